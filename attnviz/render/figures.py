"""Interactive Plotly figures of attention matrices."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from attnviz.render.colors import DEFAULT_COLORSCALE, DIVERGING_COLORSCALE, MASKED_COLOR, symmetric_max


def plotly_text(text: str) -> str:
    """User text made literal for Plotly, which reads a subset of HTML in labels (``<b>``, ``<a href>``...)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def position_labels(tokens: list[str], start: int = 0) -> list[str]:
    """Unique axis labels ``"{position}·{token}"`` (positions from ``start``): repeated tokens must not merge on a
    categorical axis. Tokens are escaped so that user text never becomes markup."""
    return [f"{start + i}·{plotly_text(t)}" for i, t in enumerate(tokens)]


def heatmap_figure(matrix: np.ndarray, row_tokens: list[str], col_tokens: list[str], title: str = "",
                   colorscale: str = DEFAULT_COLORSCALE, zmax: float | None = None,
                   row_title: str = "query", col_title: str = "key", masked: np.ndarray | None = None,
                   row_start: int = 0, col_start: int = 0, value_title: str = "weight") -> go.Figure:
    """Heatmap of one ``[query, key]`` matrix: rows are queries (top to bottom), columns are keys.

    ``row_start``, ``col_start``: position of the first row and column (a region of a larger matrix).
    ``value_title``: what a cell holds, on the colour bar and in the hover (``"contribution"``...).

    Hover shows the query token, the key token and the weight. Values go as float32 typed arrays.
    ``masked``: bool ``[query, key]``, True where attention is impossible (a causal model's later keys,
    :func:`causal_mask`); those cells are drawn blank grey, without hover, instead of as weight 0.
    """
    m = np.asarray(matrix, dtype=np.float32)
    if m.shape != (len(row_tokens), len(col_tokens)):
        raise ValueError(f"matrix {m.shape} does not match {len(row_tokens)} x {len(col_tokens)} labels")
    if masked is not None:
        m = np.where(masked, np.float32(np.nan), m)
    y, x = position_labels(row_tokens, row_start), position_labels(col_tokens, col_start)
    n = max(m.shape)
    side = int(min(900, max(360, 22 * n + 160)))
    fig = go.Figure(go.Heatmap(
        z=m, x=x, y=y, colorscale=colorscale, zmin=0, zmax=zmax if zmax is not None else _top(m), hoverongaps=False,
        hovertemplate=f"{row_title} %{{y}}<br>{col_title} %{{x}}<br>{value_title} %{{z:.4f}}<extra></extra>",
        colorbar=dict(thickness=12, title=dict(text=value_title, side="right")),
    ))
    if masked is not None:  # grey cells of their own (the plot background would also show around the matrix)
        fig.add_trace(go.Heatmap(z=np.where(masked, np.float32(1), np.float32(np.nan)), x=x, y=y, showscale=False,
                                 colorscale=[[0, MASKED_COLOR], [1, MASKED_COLOR]], hoverinfo="skip",
                                 hoverongaps=False, name="masked"))
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


def causal_mask(n: int) -> np.ndarray:
    """bool ``[query, key]``, True above the diagonal: the keys a causal model's query cannot see."""
    return np.triu(np.ones((n, n), dtype=bool), k=1)


def _top(m: np.ndarray) -> float:
    """Largest finite value (1 when there is none or it is 0): the default top of the colour range."""
    finite = m[np.isfinite(m)]
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def difference_figure(matrix: np.ndarray, row_tokens: list[str], col_tokens: list[str], title: str = "",
                      colorscale: str = DIVERGING_COLORSCALE, zmax: float | None = None,
                      row_title: str = "query", col_title: str = "key", label: str = "A − B",
                      masked: np.ndarray | None = None) -> go.Figure:
    """Heatmap of a signed ``[query, key]`` matrix (a difference of attention), centred on 0.

    The colour range is symmetric, ``[-zmax, zmax]`` (``zmax``: the largest absolute value by default), so
    white always means no difference. Hover shows the signed value. ``masked`` as in :func:`heatmap_figure`.
    """
    m = np.asarray(matrix, dtype=np.float32)
    top = symmetric_max(m, masked) if zmax is None else max(zmax, 1e-6)
    fig = heatmap_figure(m, row_tokens, col_tokens, title, row_title=row_title, col_title=col_title, masked=masked)
    fig.update_traces(
        selector=0, colorscale=colorscale, zmin=-top, zmax=top,
        hovertemplate=f"{row_title} %{{y}}<br>{col_title} %{{x}}<br>{plotly_text(label)} %{{z:+.4f}}<extra></extra>",
        colorbar=dict(thickness=12, title=dict(text=plotly_text(label), side="right")),
    )
    return fig
