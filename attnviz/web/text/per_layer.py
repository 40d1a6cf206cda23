"""Text view *Per layer*: the focused layer's heads fused by mean or max, shown as the focused head is."""
from __future__ import annotations

import streamlit as st

from attnviz.export import matrix_csv
from attnviz.render import labelled_heatmap
from attnviz.web.matrix import matrix_view
from attnviz.web.text.context import TextContext
from attnviz.web.widgets import Download, download_strip

LABEL = "Per layer"


def show(ctx: TextContext) -> None:
    """One layer's heads fused by mean or max (radio ``text_fusion``), with PNG and CSV of what is shown."""
    how = st.radio("Fuse the layer's heads by", ["mean", "max"], horizontal=True, key="text_fusion")
    layer, tokens, colorscale, masked = ctx.layer, ctx.tokens, ctx.colorscale, ctx.masked
    matrix = ctx.attention.fused(layer, how)  # [query, key]
    title = (f"{ctx.result.model} · layer {layer} · {how} of {ctx.result.n_heads} heads"
             + (" · contribution" if ctx.contributions else ""))
    st.subheader(f"Layer {layer}: {how} over heads" + (" · contributions" if ctx.contributions else ""))
    matrix_view(matrix, tokens, title, colorscale, masked, "text_layer_fig", ctx.measure)
    stem = f"{ctx.stem}_layer{layer}_{how}{ctx.suffix}"
    download_strip([
        Download("Layer", "png", stem, lambda: labelled_heatmap(matrix, tokens, tokens, title, colorscale,
                                                                masked=masked)),
        Download("Layer", "csv", stem, lambda: matrix_csv(matrix, tokens, tokens),
                 help="The fused matrix as shown (after hiding tokens and thresholding, if chosen)."),
    ], key="dl_text_layer")
