"""Image view *Per layer*: each layer's heads fused by mean (top row) and max (bottom row), for the query."""
from __future__ import annotations

import streamlit as st

from attnviz.analysis.patches import layer_maps
from attnviz.render.overlay import overlay_grid
from attnviz.render.raster import jpeg_bytes
from attnviz.web.image.context import ImageContext, Look
from attnviz.web.image.picture import read_image
from attnviz.web.runs import RESULT_TTL_S, ImageRun
from attnviz.web.widgets import Download

LABEL = "Per layer"
LAYER_CELL = 96
"""Side (px) of each layer's map."""


@st.cache_data(show_spinner=False, max_entries=32, ttl=RESULT_TTL_S)
def layers_jpeg(key: tuple[str, str, str], _run: ImageRun, query: int, look: Look,
                contributions: bool = False) -> bytes:
    """Each layer's heads fused by mean (top row) and max (bottom row), for ``query`` (its contributions with
    ``contributions``) (JPEG); ``key`` is ``_run.key``."""
    result = _run.result()
    shown = read_image(_run.data_digest, _run.data)[0]
    maps = layer_maps(result, result.grid, query, ("mean", "max"), contributions)  # [2, layer, rows, cols]
    img = overlay_grid(shown, maps, ["mean", "max"], [f"L{i}" for i in range(result.n_layers)], LAYER_CELL,
                       look.opacity, look.colorscale, look.smooth, ceiling=look.ceiling)
    return jpeg_bytes(img)


def show(ctx: ImageContext) -> list[Download]:
    """One image of every layer's mean and max map; nothing to download beyond the page's exports."""
    st.image(layers_jpeg(ctx.run.key, ctx.run, ctx.query, ctx.look, ctx.contributions), output_format="JPEG",
             caption=f"Each layer's heads fused: mean (top row) and max (bottom row), "
                     f"{'contributions' if ctx.contributions else 'attention'} of {ctx.who}")
    return []
