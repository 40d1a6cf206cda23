"""Interactive Plotly figures of attention matrices."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from attnviz.render.colors import DEFAULT_COLORSCALE


def plotly_text(text: str) -> str:
    """User text made literal for Plotly, which reads a subset of HTML in labels (``<b>``, ``<a href>``...)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def position_labels(tokens: list[str]) -> list[str]:
    """Unique axis labels ``"{position}·{token}"``: repeated tokens must not merge on a categorical axis.
    Tokens are escaped so that user text never becomes markup."""
    return [f"{i}·{plotly_text(t)}" for i, t in enumerate(tokens)]


def heatmap_figure(matrix: np.ndarray, row_tokens: list[str], col_tokens: list[str], title: str = "",
                   colorscale: str = DEFAULT_COLORSCALE, zmax: float | None = None,
                   row_title: str = "query", col_title: str = "key") -> go.Figure:
    """Heatmap of one ``[query, key]`` matrix: rows are queries (top to bottom), columns are keys.

    Hover shows the query token, the key token and the weight. Values go as float32 typed arrays.
    """
    m = np.asarray(matrix, dtype=np.float32)
    if m.shape != (len(row_tokens), len(col_tokens)):
        raise ValueError(f"matrix {m.shape} does not match {len(row_tokens)} x {len(col_tokens)} labels")
    y, x = position_labels(row_tokens), position_labels(col_tokens)
    n = max(m.shape)
    side = int(min(900, max(360, 22 * n + 160)))
    fig = go.Figure(go.Heatmap(
        z=m, x=x, y=y, colorscale=colorscale, zmin=0, zmax=zmax if zmax is not None else float(m.max() or 1),
        hovertemplate=f"{row_title} %{{y}}<br>{col_title} %{{x}}<br>weight %{{z:.4f}}<extra></extra>",
        colorbar=dict(thickness=12, title=dict(text="weight", side="right")),
    ))
    show_ticks = n <= 80
    fig.update_layout(
        title=dict(text=title, x=0, y=1, yanchor="top", yref="container", pad=dict(t=8), font=dict(size=14)),
        height=side + (80 if n <= 80 else 0), margin=dict(l=10, r=10, t=(130 if n <= 80 else 50), b=10),
        xaxis=dict(title=col_title, side="top", tickangle=-60, showticklabels=show_ticks, type="category",
                   tickfont=dict(size=10)),
        yaxis=dict(title=row_title, autorange="reversed", showticklabels=show_ticks, type="category",
                   tickfont=dict(size=10)),
        plot_bgcolor="white",
    )
    return fig
