"""The Image page's picture: the shipped examples, the uploaded or chosen file read once (scaled for display), and
the patch picker's background and click callback.

A file is named by its digest (:func:`attnviz.web.runs.digest`); its bytes go into the caches as ``_data`` (not
hashed by Streamlit again). What the page shows are JPEG bytes (:func:`attnviz.render.raster.jpeg_bytes`), which
``st.image`` passes on as they are instead of re-encoding them on every rerun; downloads are PNG.
"""
from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path

import streamlit as st
from PIL import Image

from attnviz.images import load_image_info
from attnviz.render.overlay import fit_size
from attnviz.web.runs import RESULT_TTL_S

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "assets" / "examples"
DISPLAY_SIDE = 640
"""Longer side (pixels) of the picture kept for display and overlays."""
MAX_SHOWN_ASPECT = 4
"""A picture longer than this many times its width (or wider than this many times its height) is shown stretched to
this ratio: at 50:1 the patches of a row would be under a pixel high, too thin to see or click. The models squeeze
every picture to a square anyway."""
PICKER_SIDE = 440
"""Longer side (px) of the picture behind the patch picker (its column is about this wide)."""


def examples() -> dict[str, Path]:
    """Example images shipped in ``assets/examples``: label -> path."""
    files = sorted(p for p in EXAMPLES.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))
    return {p.stem.replace("_", " ").replace("-", " "): p for p in files}


@st.cache_data(show_spinner=False, max_entries=16, ttl=RESULT_TTL_S)
def read_image(data_digest: str, _data: bytes) -> tuple[Image.Image, list[str], str]:
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


@st.cache_data(show_spinner=False, max_entries=32, ttl=RESULT_TTL_S)
def picker_source(data_digest: str, _data: bytes) -> str:
    """The picture for the patch picker as a JPEG data URI, made once per picture. (Given a PIL image, Plotly
    would encode a PNG of it on every rerun: ~75 ms and ~650 KB on the websocket.)"""
    shown = read_image(data_digest, _data)[0].copy()
    shown.thumbnail((PICKER_SIDE, PICKER_SIDE))
    buf = io.BytesIO()
    shown.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


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
