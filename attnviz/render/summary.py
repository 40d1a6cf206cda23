"""Summary figures: one token's attention by several measures side by side, and a statistic per head."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from attnviz.render.colors import DEFAULT_COLORSCALE
from attnviz.render.figures import plotly_text, position_labels

PROFILE_COLORS = ("#7f7f7f", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
STATS_OVERLAY_TRACE = 1
"""Index of the invisible, selectable marker trace of :func:`stats_figure` (``x`` = head, ``y`` = layer)."""


def top_keys(rows: dict[str, np.ndarray | None], limit: int) -> np.ndarray:
    """Positions of the ``limit`` keys with the largest value in any row, in position order (all when fewer)."""
    values = np.stack([r for r in rows.values() if r is not None])  # [measure, key]
    n = values.shape[1]
    if n <= limit:
        return np.arange(n)
    return np.sort(np.argsort(-values.max(axis=0), kind="stable")[:limit])


def profile_figure(rows: dict[str, np.ndarray | None], key_tokens: list[str], title: str = "",
                   keys: np.ndarray | None = None, highlight: int | None = None) -> go.Figure:
    """Horizontal bar charts side by side, one per measure, sharing the key-token axis.

    Args:
        rows: measure name → ``[key]`` weights of one query token (None: not computed, shown as an empty panel).
        key_tokens: ``[key]`` labels.
        keys: the key positions to show (default all), e.g. from :func:`top_keys`.
        highlight: a key position drawn in a darker shade (the query token itself).
    """
    keys = np.arange(len(key_tokens)) if keys is None else np.asarray(keys)
    labels = [position_labels(key_tokens)[k] for k in keys]
    fig = make_subplots(rows=1, cols=len(rows), shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=[plotly_text(name) for name in rows])
    for col, (name, values) in enumerate(rows.items(), start=1):
        color = PROFILE_COLORS[(col - 1) % len(PROFILE_COLORS)]
        if values is None:
            fig.add_annotation(text="not computed", x=0.5, y=0.5, showarrow=False, font=dict(color="#888"),
                               xref=f"x{col if col > 1 else ''} domain", yref="y domain")
            continue
        v = np.asarray(values, dtype=np.float32)[keys]
        colors = [("#222222" if k == highlight else color) for k in keys]
        fig.add_trace(go.Bar(x=v, y=labels, orientation="h", marker_color=colors, name=plotly_text(name),
                             hovertemplate="%{y}<br>" + plotly_text(name) + " %{x:.4f}<extra></extra>",
                             showlegend=False), row=1, col=col)
        fig.update_xaxes(range=[0, max(float(v.max()), 1e-6) * 1.08], row=1, col=col, tickformat="~g")
    fig.update_yaxes(autorange="reversed", type="category", tickfont=dict(size=10))
    fig.update_layout(height=int(max(320, 18 * len(keys) + 110)), margin=dict(l=10, r=10, t=70, b=30),
                      title=dict(text=plotly_text(title), x=0, font=dict(size=14)), plot_bgcolor="white",
                      bargap=0.15)
    return fig


def stats_figure(values: np.ndarray, label: str, focus: tuple[int, int] | None = None,
                 colorscale: str = DEFAULT_COLORSCALE) -> go.Figure:
    """A ``[layer, head]`` statistic as a heatmap (layer 0 at the top), values written in the cells.

    Trace :data:`STATS_OVERLAY_TRACE` holds one invisible marker per cell so that a click selects a head
    (Plotly heatmaps are not selectable themselves). ``focus`` ``(layer, head)`` is outlined.
    """
    v = np.asarray(values, dtype=np.float64)
    n_layers, n_heads = v.shape
    fig = go.Figure(go.Heatmap(
        z=v, x=np.arange(n_heads), y=np.arange(n_layers), colorscale=colorscale, hoverinfo="skip",
        text=np.vectorize(lambda x: f"{x:.2f}")(v), texttemplate="%{text}", textfont=dict(size=10),
        colorbar=dict(thickness=12, title=dict(text=plotly_text(label), side="right")),
    ))
    heads, layers = np.meshgrid(np.arange(n_heads), np.arange(n_layers))
    fig.add_trace(go.Scatter(
        x=heads.ravel(), y=layers.ravel(), mode="markers", showlegend=False, customdata=v.ravel(),
        marker=dict(size=28, symbol="square", opacity=0, color="black"),
        selected=dict(marker=dict(opacity=0)), unselected=dict(marker=dict(opacity=0)),
        hovertemplate="layer %{y} · head %{x}<br>" + plotly_text(label) + " %{customdata:.4f}"
                      "<br>click to focus this head<extra></extra>",
    ))
    if focus is not None:
        layer, head = focus
        fig.add_shape(type="rect", x0=head - 0.5, x1=head + 0.5, y0=layer - 0.5, y1=layer + 0.5,
                      line=dict(color="#d62728", width=3))
    fig.update_layout(
        height=int(min(900, 60 + 34 * n_layers + 60)), margin=dict(l=10, r=10, t=40, b=10),
        xaxis=dict(title="head", tickmode="array", tickvals=list(range(n_heads)),
                   ticktext=[f"H{h}" for h in range(n_heads)], side="top", fixedrange=True),
        yaxis=dict(title="layer", tickmode="array", tickvals=list(range(n_layers)),
                   ticktext=[f"L{i}" for i in range(n_layers)], autorange="reversed", fixedrange=True),
        plot_bgcolor="white", dragmode=False, clickmode="event+select",
    )
    return fig


def histogram_figure(edges: np.ndarray, counts: np.ndarray, label: str, color: str = PROFILE_COLORS[1]) -> go.Figure:
    """Counts over bins ``[edges[i], edges[i + 1])`` as bars, one per bin from the first to the last non-empty
    one (bins may differ in width, so each bar is a category labelled with its range)."""
    edges, counts = np.asarray(edges, dtype=np.float64), np.asarray(counts, dtype=np.int64)
    filled = np.flatnonzero(counts)
    lo, hi = (int(filled[0]), int(filled[-1]) + 1) if filled.size else (0, len(counts))
    names = [f"{edges[i]:.4g}–{edges[i + 1]:.4g}" for i in range(lo, hi)]
    fig = go.Figure(go.Bar(x=names, y=counts[lo:hi], marker_color=color,
                           hovertemplate="%{x}: %{y} texts<extra></extra>"))
    fig.update_layout(height=240, margin=dict(l=10, r=10, t=30, b=10), plot_bgcolor="white", bargap=0.05,
                      xaxis=dict(title=plotly_text(label), type="category", tickangle=-45, tickfont=dict(size=9)),
                      yaxis=dict(title="texts", tickformat="d", rangemode="tozero"))
    return fig
