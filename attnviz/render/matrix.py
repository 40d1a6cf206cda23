"""Small annotated heatmaps of arbitrary matrices (scores, weights, contexts) for the mechanisms lab.

Unlike :func:`attnviz.render.figures.heatmap_figure` (attention weights in [0, 1], long token axes), these show
every number in its cell, formatted by :func:`attnviz.mechanisms.fmt.format_number` (a tiny weight reads
``2.061e-09``, never ``0``), allow negative values (diverging colours centred at 0) and ``-inf`` (masked, grey).
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from attnviz.mechanisms.fmt import format_number
from attnviz.render.colors import DEFAULT_COLORSCALE
from attnviz.render.figures import plotly_text

MASKED_COLOR = "#d9d9d9"
TICK_CHAR_PX = 7
"""Width of one character of an 11 px tick label, generously (labels are short: ``q0``, ``k12``, ``d3``)."""


def value_heatmap(matrix: np.ndarray, row_labels: list[str], col_labels: list[str], title: str = "",
                  weights: bool = False, colorscale: str = DEFAULT_COLORSCALE, digits: int = 4,
                  text: list[list[str]] | None = None) -> go.Figure:
    """Heatmap of ``[rows, cols]`` with each value written in its cell.

    Args:
        matrix: float ``[rows, cols]`` (a vector is one row); ``-inf`` cells are drawn grey and labelled ``-inf``.
        weights: values are probabilities: colour from 0 to 1 with ``colorscale``; otherwise a diverging scale
            centred at 0 when the values have both signs.
        text: the label of every cell, ``[rows][cols]``, when the numbers alone cannot say it (e.g. a weight that
            underflowed to 0, labelled from its log by :func:`attnviz.mechanisms.fmt.format_probabilities`).
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim == 1:
        m = m[None, :]
    if m.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"matrix {m.shape} does not match {len(row_labels)} x {len(col_labels)} labels")
    finite = np.isfinite(m)
    z = np.where(finite, m, np.nan)
    if text is None:
        text = [[format_number(v, digits) for v in row] for row in m]
    elif np.shape(text) != m.shape:
        raise ValueError(f"{np.shape(text)} labels for a {m.shape} matrix")
    vals = m[finite]
    lo, hi = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 1.0)
    if weights:
        scale, zmin, zmax, zmid = colorscale, 0.0, 1.0, None
    elif lo < 0 < hi:
        bound = max(-lo, hi)
        scale, zmin, zmax, zmid = "RdBu_r", -bound, bound, 0.0
    else:
        scale, zmin, zmax, zmid = colorscale, lo, hi if hi > lo else lo + 1, None
    x = [plotly_text(c) for c in col_labels]
    y = [plotly_text(r) for r in row_labels]
    fig = go.Figure()
    if not finite.all():  # grey underlay shows through the NaN (masked) cells
        fig.add_trace(go.Heatmap(z=np.where(finite, np.nan, 0.0), x=x, y=y, showscale=False, hoverinfo="skip",
                                 colorscale=[[0, MASKED_COLOR], [1, MASKED_COLOR]]))
    fig.add_trace(go.Heatmap(
        z=z, x=x, y=y, text=text, texttemplate="%{text}", textfont=dict(size=12), colorscale=scale,
        zmin=zmin, zmax=zmax, zmid=zmid, xgap=2, ygap=2, customdata=text,
        hovertemplate="%{y} · %{x}: %{customdata}<extra></extra>",
        colorbar=dict(thickness=10, len=1.0, tickfont=dict(size=10)),
    ))
    rows, cols = m.shape
    # Margins made room for the tick labels here rather than by Plotly's automargin, which draws a chart, measures
    # its labels and draws it again: 12 of these charts are drawn in 0.16 s instead of 0.25 s (bench/chart_draw.py).
    label_px = TICK_CHAR_PX * max(len(r) for r in row_labels) + 14
    fig.update_layout(
        title=dict(text=plotly_text(title), x=0, font=dict(size=13)) if title else None,
        height=int(70 + (30 if title else 0) + 38 * rows), width=int(min(900, 140 + 92 * cols)),
        margin=dict(l=10 + label_px, r=10, t=(40 if title else 10) + 20, b=10),
        xaxis=dict(side="top", type="category", tickfont=dict(size=11), automargin=False),
        yaxis=dict(autorange="reversed", type="category", tickfont=dict(size=11), automargin=False),
        plot_bgcolor="white",
    )
    return fig
