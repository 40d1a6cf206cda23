"""Image view *Focused head*: what the query attends to in the focused head, over the picture and alone."""
from __future__ import annotations

import streamlit as st

from attnviz.analysis.patches import to_grid
from attnviz.render.overlay import heatmap_image, mark_patch, overlay
from attnviz.render.raster import jpeg_bytes
from attnviz.web.image.context import ImageContext
from attnviz.web.widgets import Download

LABEL = "Focused head"
RAW_PATCH_PX = 32
"""Pixels per patch of the raw heatmap's download (the model's square input grid)."""


def show(ctx: ImageContext) -> list[Download]:
    """The overlay and the raw heatmap side by side; offers both as PNG."""
    result, layer, head, look, chosen = ctx.result, ctx.layer, ctx.head, ctx.look, ctx.chosen
    rows, cols = result.grid
    row = result.row(layer, head, ctx.query)  # [key]
    if ctx.contributions:
        row = row * result.value_norms()[layer, head]
    head_map = to_grid(row, result.grid)  # [rows, cols]
    share = head_map.sum() / row.sum() if row.sum() > 0 else 0.0  # of the row's total on the patches
    focus = overlay(ctx.shown, head_map, look.opacity, look.colorscale, smooth=look.smooth, ceiling=look.ceiling)
    raw = heatmap_image(head_map, ctx.shown.size, look.colorscale, smooth=look.smooth, ceiling=look.ceiling)
    if chosen:
        focus, raw = mark_patch(focus, result.grid, *chosen), mark_patch(raw, result.grid, *chosen)
    # Overlays on a photo are shown as JPEG bytes (st.image would re-encode anything else on every rerun).
    left, right = st.columns(2)
    with left:
        st.subheader(f"Focused head: L{layer} H{head}" + (" · contributions" if ctx.contributions else ""))
        st.image(jpeg_bytes(focus), output_format="JPEG",
                 caption=f"L{layer} H{head}: {'contributions' if ctx.contributions else 'attention'} of {ctx.who} "
                         f"(max {head_map.max():.3f}, {share:.0%} of it on patches)")
    with right:
        st.subheader("Raw heatmap")
        st.image(jpeg_bytes(raw), output_format="JPEG",
                 caption=f"L{layer} H{head} alone, {ctx.measure} 0 to {head_map.max():.3f}")
    stem = f"{ctx.stem}_L{layer}H{head}{ctx.suffix}"
    return [Download("Focused overlay", "png", f"{stem}_overlay", lambda: focus),
            Download("Raw heatmap", "png", f"{stem}_heatmap",
                     lambda: heatmap_image(head_map, (cols * RAW_PATCH_PX, rows * RAW_PATCH_PX), look.colorscale,
                                           smooth=look.smooth, ceiling=look.ceiling),
                     help=f"The head's map alone, {RAW_PATCH_PX} px per patch (the model's square input grid).")]
