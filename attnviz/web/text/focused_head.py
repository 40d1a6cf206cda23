"""Text view *Focused head*: one head as an interactive heatmap (an image beyond 256 tokens), with its PNG and CSV."""
from __future__ import annotations

import streamlit as st

from attnviz.export import head_csv, head_title
from attnviz.render import labelled_heatmap
from attnviz.web.matrix import matrix_view
from attnviz.web.text.context import TextContext
from attnviz.web.widgets import Download, download_strip

LABEL = "Focused head"


def show(ctx: TextContext) -> None:
    """The focused head (chosen above the tabs) with the page's options applied; its CSV holds the model's weights."""
    layer, head, tokens, colorscale, run, masked = ctx.layer, ctx.head, ctx.tokens, ctx.colorscale, ctx.run, ctx.masked
    st.subheader(f"Focused head: L{layer} H{head}")
    matrix = ctx.attention.head(layer, head)  # a new array: the downloads keep this head, nothing else
    title = head_title(ctx.result, layer, head)
    matrix_view(matrix, tokens, title, colorscale, masked, "text_head_fig")
    stem = f"{ctx.stem}_layer{layer}_head{head}"
    download_strip([
        Download(LABEL, "png", stem, lambda: labelled_heatmap(matrix, tokens, tokens, title, colorscale,
                                                              masked=masked)),
        Download(LABEL, "csv", stem, lambda: head_csv(run.result(), layer, head),
                 help="The model's weights of this head (before hiding tokens or thresholding)."),
    ], key="dl_text_head")
