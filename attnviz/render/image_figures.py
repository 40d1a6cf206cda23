"""Plotly figures of the Image page: the patch picker (the picture with one clickable point per patch) and a
classifier's class probabilities."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from PIL import Image


def patch_picker_figure(image: Image.Image, grid: tuple[int, int], chosen: tuple[int, int] | None,
                        source: str | None = None) -> go.Figure:
    """The picture with one invisible, clickable point per patch (click = choose that patch as the query).

    Plotly has no click events on images, so the patch centres are a transparent scatter layer above it.

    Args:
        image: the picture as shown (its aspect sets the figure's height).
        grid: ``(rows, cols)`` of the patch grid.
        chosen: ``(row, col)`` of the patch outlined in red, or None.
        source: the picture as a data URI (cheaper to send than ``image``); ``image`` itself when None.
    """
    rows, cols = grid
    r, c = np.mgrid[0:rows, 0:cols]
    fig = go.Figure(go.Scatter(
        x=(c + 0.5).ravel(), y=(r + 0.5).ravel(), mode="markers", customdata=np.stack([r.ravel(), c.ravel()], 1),
        marker=dict(size=max(6, int(300 / max(rows, cols))), color="rgba(255,255,255,0.01)", symbol="square"),
        hovertemplate="patch row %{customdata[0]}, col %{customdata[1]}<extra></extra>",
        selected=dict(marker=dict(color="rgba(255,255,255,0.01)")),
        unselected=dict(marker=dict(opacity=1)),
    ))
    fig.add_layout_image(source=source or image, x=0, y=0, sizex=cols, sizey=rows, xref="x", yref="y", sizing="stretch",
                         layer="below")
    if chosen is not None:
        fig.add_shape(type="rect", x0=chosen[1], x1=chosen[1] + 1, y0=chosen[0], y1=chosen[0] + 1,
                      line=dict(color="red", width=2))
    w, h = image.size  # the figure's height follows the picture's aspect (its column is ~440 px wide)
    fig.update_layout(
        height=int(min(440, max(200, 440 * h / w))), margin=dict(l=0, r=0, t=0, b=0), dragmode=False,
        showlegend=False, plot_bgcolor="white",
        clickmode="event+select",
        xaxis=dict(range=[0, cols], visible=False, fixedrange=True, constrain="domain"),
        yaxis=dict(range=[rows, 0], visible=False, fixedrange=True, scaleanchor="x",
                   scaleratio=(h / w) * (cols / rows), constrain="domain"),
    )
    return fig


def probabilities_figure(probabilities: dict[str, float], prediction: str) -> go.Figure:
    """Horizontal bars of the class probabilities (class name -> probability), the predicted class highlighted."""
    names = list(probabilities)
    fig = go.Figure(go.Bar(
        x=[probabilities[n] for n in names], y=names, orientation="h",
        marker_color=["#d62728" if n == prediction else "#7f7f7f" for n in names],
        hovertemplate="%{y}: %{x:.3f}<extra></extra>",
    ))
    fig.update_layout(height=40 + 24 * len(names), margin=dict(l=10, r=10, t=10, b=30),
                      xaxis=dict(range=[0, 1], title="probability"), yaxis=dict(autorange="reversed"))
    return fig
