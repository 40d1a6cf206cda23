"""Streamlit caches and widgets of the Image page (the shared model cache is :func:`attnviz.ui.get_model`).

Inputs are keyed by the SHA-256 of the file's bytes; the bytes themselves go in as ``_data`` (not hashed by
Streamlit). Results live in the shared, byte-bounded :data:`attnviz.ui.RESULTS`; pictures, rendered grids and
rollouts are bounded ``st.cache_data`` entries. What the page shows are JPEG bytes
(:func:`attnviz.render.raster.jpeg_bytes`), which ``st.image`` passes on as they are instead of re-encoding them on
every rerun; PNGs are made for downloads.
"""
from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from attnviz import ui
from attnviz.analysis.patches import layer_maps, query_maps, rollout_map
from attnviz.images import load_image_info
from attnviz.render.overlay import fit_size, overlay_grid
from attnviz.render.raster import jpeg_bytes, png_bytes
from attnviz.result import AttentionResult

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "assets" / "examples"
DISPLAY_SIDE = 640
"""Longer side (pixels) of the picture kept for display and overlays."""
MAX_SHOWN_ASPECT = 4
"""A picture longer than this many times its width (or wider than this many times its height) is shown stretched to
this ratio: at 50:1 the patches of a row would be under a pixel high, too thin to see or click. The models squeeze
every picture to a square anyway."""
GRID_CELL = 128
LAYER_CELL = 96


def examples() -> dict[str, Path]:
    """Example images shipped in ``assets/examples``: label -> path."""
    files = sorted(p for p in EXAMPLES.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))
    return {p.stem.replace("_", " ").replace("-", " "): p for p in files}


def data_key(data: bytes) -> str:
    """Stable name of an input file: the SHA-256 of its bytes (cache key; its first 12 characters name files)."""
    return hashlib.sha256(data).hexdigest()


@st.cache_data(show_spinner=False, max_entries=16, ttl=ui.RESULT_TTL_S)
def read_image(key: str, _data: bytes) -> tuple[Image.Image, list[str], str]:
    """The picture scaled for display (longer side :data:`DISPLAY_SIDE`), notices about the file, and a line
    describing it. ``ValueError`` for an unusable file (not cached)."""
    info = load_image_info(_data)
    w, h = info.original_size
    tiny = max(info.image.size) * 4 <= DISPLAY_SIDE  # e.g. 28 px Fashion-MNIST: keep pixels crisp
    method = Image.Resampling.NEAREST if tiny else Image.Resampling.LANCZOS
    size, notices = fit_size(info.image.size, DISPLAY_SIDE), list(info.notices)
    if max(size) > MAX_SHOWN_ASPECT * min(size):
        short = -(-max(size) // MAX_SHOWN_ASPECT)
        size = (size[0], short) if size[0] > size[1] else (short, size[1])
        notices.append(f"The picture is {max(w, h) / min(w, h):.0f} times longer one way than the other: it is shown "
                       f"stretched to {MAX_SHOWN_ASPECT}:1 so that its patches can be seen and clicked. The model "
                       "squeezes every picture to a square anyway.")
    shown = info.image.resize(size, method)
    return shown, notices, f"{info.format}, {w}×{h} px, mode {info.original_mode}"


def run_image(model_name: str, key: str, data: bytes) -> AttentionResult:
    """Cached image run on the full-resolution file (``ValueError`` raised, not cached); ``key`` names ``data``.

    One DINOv2 result holds 12*6*257*257*4 B = 19 MB of weights."""
    return ui.RESULTS.get_or_compute(("image", model_name, key),
                                     lambda: ui.limited(ui.get_model(model_name).run, image=data))


def _grid(model_name: str, key: str, data: bytes, query: int, opacity: float, colorscale: str, smooth: bool,
          ceiling: float) -> Image.Image:
    """Every layer x head: what ``query`` attends to, over the picture."""
    result = run_image(model_name, key, data)
    shown = read_image(key, data)[0]
    maps = query_maps(result.weights, result.grid, query)  # [layer, head, rows, cols]
    return overlay_grid(shown, maps, [f"L{i}" for i in range(result.n_layers)],
                        [f"H{j}" for j in range(result.n_heads)], GRID_CELL, opacity, colorscale, smooth,
                        ceiling=ceiling)


@st.cache_data(show_spinner=False, max_entries=32, ttl=ui.RESULT_TTL_S)
def grid_jpeg(model_name: str, key: str, _data: bytes, query: int, opacity: float, colorscale: str,
              smooth: bool, ceiling: float = 100.0) -> bytes:
    """The all-heads grid as the page shows it (JPEG, :func:`jpeg_bytes`)."""
    return jpeg_bytes(_grid(model_name, key, _data, query, opacity, colorscale, smooth, ceiling))


@st.cache_data(show_spinner=False, max_entries=8, ttl=ui.RESULT_TTL_S)
def grid_png(model_name: str, key: str, _data: bytes, query: int, opacity: float, colorscale: str,
             smooth: bool, ceiling: float = 100.0) -> bytes:
    """The all-heads grid as a PNG download (made on click)."""
    return png_bytes(_grid(model_name, key, _data, query, opacity, colorscale, smooth, ceiling), compress_level=1)


@st.cache_data(show_spinner=False, max_entries=32, ttl=ui.RESULT_TTL_S)
def layers_jpeg(model_name: str, key: str, _data: bytes, query: int, opacity: float, colorscale: str,
                smooth: bool, ceiling: float = 100.0) -> bytes:
    """Each layer's heads fused by mean (top row) and max (bottom row), for ``query`` (JPEG)."""
    result = run_image(model_name, key, _data)
    shown = read_image(key, _data)[0]
    maps = layer_maps(result.weights, result.grid, query, ("mean", "max"))  # [2, layer, rows, cols]
    img = overlay_grid(shown, maps, ["mean", "max"], [f"L{i}" for i in range(result.n_layers)], LAYER_CELL,
                       opacity, colorscale, smooth, ceiling=ceiling)
    return jpeg_bytes(img)


@st.cache_data(show_spinner=False, max_entries=32, ttl=ui.RESULT_TTL_S)
def rollout_grid(model_name: str, key: str, _data: bytes, query: int, head_fusion: str,
                 discard_ratio: float) -> np.ndarray:
    """Rollout of ``query`` over the patches, ``[rows, cols]``."""
    result = run_image(model_name, key, _data)
    return rollout_map(result.weights, result.grid, query, head_fusion, discard_ratio)


def clamp_state(key: str, upper: int, default: int = 0) -> None:
    """Keep a stored choice in ``0..upper`` before its widget is made (models differ in layers, heads, grid)."""
    value = st.session_state.get(key, default)
    st.session_state[key] = min(max(int(value), 0), upper)


PICKER_SIDE = 440
"""Longer side (px) of the picture behind the patch picker (its column is about this wide)."""


@st.cache_data(show_spinner=False, max_entries=32, ttl=ui.RESULT_TTL_S)
def picker_source(key: str, _data: bytes) -> str:
    """The picture for the patch picker as a JPEG data URI, made once per picture. (Given a PIL image, Plotly
    would encode a PNG of it on every rerun: ~75 ms and ~650 KB on the websocket.)"""
    shown = read_image(key, _data)[0].copy()
    shown.thumbnail((PICKER_SIDE, PICKER_SIDE))
    buf = io.BytesIO()
    shown.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def patch_picker_figure(image: Image.Image, grid: tuple[int, int], chosen: tuple[int, int] | None,
                        source: str | None = None) -> go.Figure:
    """The picture with one invisible, clickable point per patch (click = choose that patch as the query).

    Plotly has no click events on images, so the patch centres are a transparent scatter layer above it.
    ``source``: the picture as a data URI (:func:`picker_source`); ``image`` itself when None.
    """
    rows, cols = grid
    r, c = np.mgrid[0:rows, 0:cols]
    fig = go.Figure(go.Scatter(
        x=(c + 0.5).ravel(), y=(r + 0.5).ravel(), mode="markers", customdata=np.stack([r.ravel(), c.ravel()], 1),
        marker=dict(size=max(6, int(300 / max(rows, cols))), color="rgba(255,255,255,0.01)", symbol="square"),
        hovertemplate="patch row %{customdata[0]}, col %{customdata[1]}<extra></extra>",
        selected=dict(marker=dict(color="rgba(255,255,255,0.01)")),
        unselected=dict(marker=dict(opacity=1)),
    ))
    fig.add_layout_image(source=source or image, x=0, y=0, sizex=cols, sizey=rows, xref="x", yref="y", sizing="stretch",
                         layer="below")
    if chosen is not None:
        fig.add_shape(type="rect", x0=chosen[1], x1=chosen[1] + 1, y0=chosen[0], y1=chosen[0] + 1,
                      line=dict(color="red", width=2))
    w, h = image.size  # the figure's height follows the picture's aspect (its column is ~440 px wide)
    fig.update_layout(
        height=int(min(440, max(200, 440 * h / w))), margin=dict(l=0, r=0, t=0, b=0), dragmode=False,
        showlegend=False, plot_bgcolor="white",
        clickmode="event+select",
        xaxis=dict(range=[0, cols], visible=False, fixedrange=True, constrain="domain"),
        yaxis=dict(range=[rows, 0], visible=False, fixedrange=True, scaleanchor="x",
                   scaleratio=(h / w) * (cols / rows), constrain="domain"),
    )
    return fig


def on_patch_click(chart_key: str, row_key: str, col_key: str, mode_key: str, patch_label: str) -> Callable[[], None]:
    """A callback for the picker's ``on_select``: the clicked patch becomes the query."""

    def callback() -> None:
        event = st.session_state.get(chart_key) or {}
        points = (event.get("selection") or {}).get("points") or []
        if not points:
            return
        p = points[0]  # patch centres sit at (col + 0.5, row + 0.5)
        row, col = int(float(p.get("y", 0))), int(float(p.get("x", 0)))
        st.session_state[row_key], st.session_state[col_key] = row, col
        st.session_state[mode_key] = patch_label

    return callback


def probabilities_figure(probabilities: dict[str, float], prediction: str) -> go.Figure:
    """Horizontal bars of the class probabilities, the predicted class highlighted."""
    names = list(probabilities)
    fig = go.Figure(go.Bar(
        x=[probabilities[n] for n in names], y=names, orientation="h",
        marker_color=["#d62728" if n == prediction else "#7f7f7f" for n in names],
        hovertemplate="%{y}: %{x:.3f}<extra></extra>",
    ))
    fig.update_layout(height=40 + 24 * len(names), margin=dict(l=10, r=10, t=10, b=30),
                      xaxis=dict(range=[0, 1], title="probability"), yaxis=dict(autorange="reversed"))
    return fig
