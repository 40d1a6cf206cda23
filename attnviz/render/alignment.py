"""Alignment plots of cross-attention (output tokens x input tokens), like the classic translation figures.

A thin layer over :func:`attnviz.render.figures.heatmap_figure`: square cells (an 11 x 35 date alignment is a
wide strip, not a stretched square) and a label on every column.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from attnviz.render.colors import DEFAULT_COLORSCALE
from attnviz.render.figures import heatmap_figure

CELL = 22
"""Pixels per cell side."""


def alignment_figure(matrix: np.ndarray, row_tokens: list[str], col_tokens: list[str], title: str = "",
                     colorscale: str = DEFAULT_COLORSCALE, row_title: str = "output", col_title: str = "input",
                     max_labels: int = 80) -> go.Figure:
    """Heatmap of ``[query, key]`` (e.g. cross-attention ``[output, input]``) with square cells.

    Every row and column is labelled while there are at most ``max_labels`` of them.
    """
    m = np.asarray(matrix, dtype=np.float32)
    fig = heatmap_figure(m, row_tokens, col_tokens, title, colorscale, row_title=row_title, col_title=col_title)
    rows, cols = m.shape
    cell = CELL if max(rows, cols) <= 60 else max(6, 1200 // max(rows, cols))
    labelled = max(rows, cols) <= max_labels
    fig.update_layout(
        height=int(rows * cell + (150 if labelled else 80)), width=int(cols * cell + (180 if labelled else 120)),
        margin=dict(l=10, r=10, t=110 if labelled else 50, b=10),
    )
    fig.update_xaxes(dtick=1, showticklabels=labelled, constrain="domain")
    fig.update_yaxes(dtick=1, showticklabels=labelled, scaleanchor="x", scaleratio=1, constrain="domain")
    return fig
