"""A ``[query, key]`` matrix on a page (Text and Compare): an interactive Plotly heatmap for short inputs, the
labelled PNG beyond :data:`INTERACTIVE_UP_TO` tokens unless the person turns "Interactive chart" on.
"""
from __future__ import annotations

import numpy as np
import streamlit as st
from PIL import Image

from attnviz.render import heatmap_figure, labelled_heatmap, png_bytes

INTERACTIVE_UP_TO = 256
"""Longer inputs get their matrices as an image unless "Interactive chart" is on: a cell is then under 3.5 px on the
900 px chart (hover can hardly hit one), and a Plotly chart of 512 x 512 cells costs the browser ~0.5 s of CPU per
draw (``bench/browser_cost.py``), where the image costs the server ~0.05 s."""


def interactive(n: int, key: str) -> bool:
    """Whether the page draws its ``n``-token matrices as interactive charts: always up to
    :data:`INTERACTIVE_UP_TO` tokens, beyond that only once the session turns the toggle ``key`` on (one toggle
    serves every matrix below it)."""
    return n <= INTERACTIVE_UP_TO or st.toggle(
        "Interactive chart (hover and zoom)", key=key,
        help=f"Above {INTERACTIVE_UP_TO} tokens a matrix is shown as an image, which the browser draws at once. "
             "The interactive chart shows each cell's tokens and weight on hover, but takes the browser a second "
             "or more to draw.")


def matrix_image(image: Image.Image, n: int, caption: str = "") -> None:
    """A long input's ``n`` × ``n`` matrix as the PNG it is (its tokens go in :func:`token_positions`)."""
    st.image(png_bytes(image, compress_level=1), output_format="PNG",  # as it is: "auto" makes a JPEG of it
             caption=caption or f"{n} × {n} cells: queries down, keys across, in the order listed under \"Tokens "
                                "by position\". Turn on the interactive chart to read a cell's tokens and weight.")


def token_positions(key: str, lists: dict[str, list[str]]) -> None:
    """An expander listing each token list (``{label: tokens}``; label "" for none) as ``0·[CLS]   1·the …``: the
    rows and columns of matrices shown as images. Plain text (``st.text``): never read as Markdown or HTML."""
    with st.expander("Tokens by position (rows and columns)", key=key):
        for label, tokens in lists.items():
            st.text((f"{label}: " if label else "") + "   ".join(f"{i}·{t}" for i, t in enumerate(tokens)))


def zoom_region(n: int, key: str) -> tuple[slice, slice]:
    """Range sliders for the rows (queries) and columns (keys) of an ``n`` x ``n`` matrix: the region shown at
    full resolution (whole by default)."""
    c = st.container(horizontal=True, gap="large")
    rows = c.slider("Zoom: query positions", 0, n - 1, (0, n - 1), key=f"{key}_rows",
                    help=f"Show a region at full resolution, one cell per weight; up to {INTERACTIVE_UP_TO} "
                         "positions a side it is an interactive chart with each cell's tokens and weight on hover.")
    cols = c.slider("Zoom: key positions", 0, n - 1, (0, n - 1), key=f"{key}_cols")
    return slice(rows[0], rows[1] + 1), slice(cols[0], cols[1] + 1)


def matrix_view(matrix: np.ndarray, tokens: list[str], title: str, colorscale: str, masked: np.ndarray | None,
                key: str, value_title: str = "weight") -> None:
    """A ``[query, key]`` matrix as an interactive heatmap (hover, zoom); beyond :data:`INTERACTIVE_UP_TO` tokens
    as an image (a long input's matrix shrunk by block maxima to at most 1,024 px), unless the session turns
    "Interactive chart" on (``text_interactive``, shared by the Text page's views), with range sliders to zoom into
    a region at full resolution, interactive once the region is at most :data:`INTERACTIVE_UP_TO` a side.
    ``value_title``: what a cell holds (the charts' colour bar and hover)."""
    n = len(tokens)
    if n <= INTERACTIVE_UP_TO:
        st.plotly_chart(heatmap_figure(matrix, tokens, tokens, title, colorscale, masked=masked,
                                       value_title=value_title), key=key)
        return
    rows, cols = zoom_region(n, "text_zoom")
    region = f"queries {rows.start}–{rows.stop - 1}, keys {cols.start}–{cols.stop - 1}"
    whole = (rows.stop - rows.start, cols.stop - cols.start) == (n, n)
    small = max(rows.stop - rows.start, cols.stop - cols.start) <= INTERACTIVE_UP_TO
    if small or interactive(n, "text_interactive"):
        st.plotly_chart(heatmap_figure(matrix[rows, cols], tokens[rows], tokens[cols],
                                       title if whole else f"{title} · {region}", colorscale,
                                       masked=None if masked is None else masked[rows, cols], row_start=rows.start,
                                       col_start=cols.start, value_title=value_title), key=key)
        return
    if whole:
        matrix_image(labelled_heatmap(matrix, tokens, tokens, title, colorscale, masked=masked), n)
    else:
        side = max(rows.stop - rows.start, cols.stop - cols.start)
        matrix_image(labelled_heatmap(matrix[rows, cols], tokens[rows], tokens[cols], f"{title} · {region}",
                                      colorscale, max_side=min(max(1024, side), 2048),
                                      masked=None if masked is None else masked[rows, cols]), side,
                     caption=f"Queries {rows.start}–{rows.stop - 1} down, keys {cols.start}–{cols.stop - 1} across, "
                             "one cell per weight. Narrow the region to 256 positions or fewer for hover values.")
    token_positions("text_token_positions", {"": tokens})
