"""Text view *Focused head*: one head as an interactive heatmap (an image beyond 256 tokens), with its PNG and CSV."""
from __future__ import annotations

import streamlit as st

from attnviz.export import head_csv, head_title, matrix_csv
from attnviz.render import labelled_heatmap
from attnviz.web.matrix import matrix_view
from attnviz.web.text.context import TextContext
from attnviz.web.widgets import Download, download_strip

LABEL = "Focused head"


def show(ctx: TextContext) -> None:
    """The focused head (chosen above the tabs) with the page's options applied; its CSV holds the model's weights
    (its contributions when they are shown)."""
    layer, head, tokens, colorscale, run, masked = ctx.layer, ctx.head, ctx.tokens, ctx.colorscale, ctx.run, ctx.masked
    st.subheader(f"Focused head: L{layer} H{head}" + (" · contributions" if ctx.contributions else ""))
    matrix = ctx.attention.head(layer, head)  # a new array: the downloads keep this head, nothing else
    title = head_title(ctx.result, layer, head) + (" · contribution" if ctx.contributions else "")
    matrix_view(matrix, tokens, title, colorscale, masked, "text_head_fig", ctx.measure)
    stem = f"{ctx.stem}_layer{layer}_head{head}{ctx.suffix}"
    if ctx.contributions:
        csv = Download(LABEL, "csv", stem, lambda: contribution_csv(run.result(), layer, head),
                       help="The model's contributions of this head, weight × value norm (before hiding tokens or "
                            "thresholding).")
    else:
        csv = Download(LABEL, "csv", stem, lambda: head_csv(run.result(), layer, head),
                       help="The model's weights of this head (before hiding tokens or thresholding).")
    download_strip([
        Download(LABEL, "png", stem, lambda: labelled_heatmap(matrix, tokens, tokens, title, colorscale,
                                                              masked=masked)),
        csv,
    ], key="dl_text_head")


def contribution_csv(result, layer: int, head: int) -> str:
    """CSV of one head's ``[query, key]`` contributions (:meth:`attnviz.result.AttentionResult.contribution`)."""
    return matrix_csv(result.contribution(layer, head), result.tokens, result.keys)
