"""Figures of the explanation views: deletion and insertion curves (Plotly and PNG), several measures of one token
over the input as one picture, and one generated token's attention rows in every head.

Everything here is numpy, Plotly and Pillow: no torch, no streamlit.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw
from plotly.subplots import make_subplots

from attnviz.render.colors import DEFAULT_COLORSCALE, colour_index
from attnviz.render.figures import plotly_text
from attnviz.render.raster import BACKGROUND, INK, SCALE_LEVELS, WHITE, font, labelled_heatmap, palette_image

if TYPE_CHECKING:
    from attnviz.analysis.faithfulness import Curve

METHOD_COLORS = ("#7f7f7f", "#1f77b4", "#2ca02c", "#9467bd", "#d62728", "#ff7f0e", "#8c564b")
"""One colour per method, in the order the methods come (the same in both panels and in the PNG)."""
MODE_TITLES = {"deletion": "Deletion: most relevant removed first (lower area is better)",
               "insertion": "Insertion: most relevant put back first (higher area is better)"}


def _labels(tokens: list[str]) -> list[str]:
    """Axis labels of a picture: ``"{position}·{token}"`` (a picture needs no escaping)."""
    return [f"{i}·{t}" for i, t in enumerate(tokens)]


def _methods(curves: Sequence[Curve]) -> list[str]:
    return list(dict.fromkeys(c.method for c in curves))


def _modes(curves: Sequence[Curve]) -> list[str]:
    return [m for m in MODE_TITLES if any(c.mode == m for c in curves)]


def curves_figure(curves: Sequence[Curve], labels: dict[str, str] | None = None, title: str = "") -> go.Figure:
    """Deletion and insertion curves side by side (one panel per mode present), one line per method, its area in
    the legend.

    Args:
        curves: :class:`attnviz.analysis.faithfulness.Curve` objects.
        labels: method name -> what the legend calls it (default: the name).
    """
    labels = labels or {}
    modes, methods = _modes(curves), _methods(curves)
    fig = make_subplots(rows=1, cols=max(1, len(modes)), shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=[MODE_TITLES[m] for m in modes])
    for col, mode in enumerate(modes, start=1):
        x_title = "share of units removed" if mode == "deletion" else "share of units put back"
        for c in (c for c in curves if c.mode == mode):
            k = methods.index(c.method)
            name = plotly_text(labels.get(c.method, c.method))
            fig.add_trace(go.Scatter(
                x=c.fractions, y=c.probabilities, mode="lines", name=f"{name}: {c.auc:.1f}",
                legendgroup=mode, legendgrouptitle_text=mode, line=dict(color=METHOD_COLORS[k % len(METHOD_COLORS)]),
                hovertemplate=f"{name}<br>%{{x:.0%}} → p = %{{y:.4f}}<extra></extra>"), row=1, col=col)
        fig.update_xaxes(title_text=x_title, range=[0, 1], tickformat=".0%", row=1, col=col)
    fig.update_yaxes(range=[0, 1.02])
    fig.update_yaxes(title_text="probability of the target", row=1, col=1)
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=80, b=40), plot_bgcolor="white",
                      title=dict(text=plotly_text(title), x=0, font=dict(size=14)),
                      legend=dict(groupclick="toggleitem"))
    fig.update_annotations(font=dict(size=12))
    return fig


def _rgb(color: str) -> tuple[int, int, int]:
    return tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))


def curves_image(curves: Sequence[Curve], labels: dict[str, str] | None = None, title: str = "",
                 panel: tuple[int, int] = (420, 300)) -> Image.Image:
    """:func:`curves_figure` as a PNG-ready picture (Pillow): one panel per mode, both axes from 0 to 1, one line per
    method, a legend with each method's areas."""
    labels = labels or {}
    modes, methods = _modes(curves), _methods(curves)
    w, h = panel
    left, top, gap, legend_h = 56, 56, 40, 18 * (len(methods) + 1)
    width = left + len(modes) * (w + gap) + 10
    height = top + h + 46 + legend_h
    img = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(img)
    f, small = font(12), font(10)
    draw.text((10, 8), title, fill=INK, font=font(14))
    y_top = 1.0  # probabilities
    for p, mode in enumerate(modes):
        x0, y0 = left + p * (w + gap), top
        draw.text((x0, y0 - 22), mode.capitalize() + (" (lower area is better)" if mode == "deletion"
                                                      else " (higher area is better)"), fill=INK, font=f)
        draw.rectangle([x0, y0, x0 + w, y0 + h], outline=(150, 150, 150))
        for t in np.linspace(0, 1, 5):
            gx, gy = x0 + t * w, y0 + h - t * h
            draw.line([gx, y0 + h, gx, y0 + h + 4], fill=INK)
            draw.text((gx, y0 + h + 6), f"{t:.0%}", fill=INK, font=small, anchor="mt")
            draw.line([x0 - 4, gy, x0, gy], fill=INK)
            draw.text((x0 - 6, gy), f"{t * y_top:g}", fill=INK, font=small, anchor="rm")
        draw.text((x0 + w / 2, y0 + h + 22), "share of units " + ("removed" if mode == "deletion" else "put back"),
                  fill=INK, font=small, anchor="mt")
        for c in (c for c in curves if c.mode == mode):
            color = _rgb(METHOD_COLORS[methods.index(c.method) % len(METHOD_COLORS)])
            xy = [(x0 + float(x) * w, y0 + h - float(y) / y_top * h) for x, y in zip(c.fractions, c.probabilities,
                                                                                      strict=True)]
            draw.line(xy, fill=color, width=2) if len(xy) > 1 else draw.point(xy, fill=color)
    ly = top + h + 46
    draw.text((left, ly), "area (percentage points): " + ", ".join(modes), fill=INK, font=small)
    for k, m in enumerate(methods):
        y = ly + 18 * (k + 1)
        color = _rgb(METHOD_COLORS[k % len(METHOD_COLORS)])
        draw.line([left, y + 6, left + 24, y + 6], fill=color, width=3)
        areas = ", ".join(f"{c.auc:.1f}" for mode in modes for c in curves if c.method == m and c.mode == mode)
        draw.text((left + 32, y), f"{labels.get(m, m)}: {areas}", fill=INK, font=f)
    return img


def measures_image(rows: dict[str, np.ndarray | None], key_tokens: list[str], title: str = "",
                   colorscale: str = DEFAULT_COLORSCALE) -> Image.Image:
    """Several measures of one token over the input as one labelled heatmap: one row per measure computed, one
    column per key token, each row coloured from 0 to its own maximum (the measures have different scales)."""
    names = [name for name, v in rows.items() if v is not None]
    m = np.stack([np.asarray(rows[name], np.float32) for name in names])  # [measure, key]
    top = m.max(axis=1, keepdims=True)
    m = np.divide(m, top, out=np.zeros_like(m), where=top > 0)
    return labelled_heatmap(m, names, _labels(key_tokens), title + " (each row scaled to its maximum)",
                            colorscale, max_side=1400)


def head_rows_image(rows: np.ndarray, key_tokens: list[str], title: str = "",
                    colorscale: str = DEFAULT_COLORSCALE, row_px: int = 3, max_width: int = 1100) -> Image.Image:
    """Every head's attention row of one query over its keys: ``rows[layer, head, key]`` as stacked strips, one
    block of ``head`` rows per layer (labelled ``L0``, ``L1``...), key tokens across; each strip is coloured from 0
    to its own maximum (as each thumbnail of the all-heads grid is)."""
    r = np.asarray(rows, np.float32)
    n_layers, n_heads, n_keys = r.shape
    top_each = r.max(axis=2, keepdims=True)
    index = colour_index(r, np.where(top_each > 0, top_each, 1.0), SCALE_LEVELS)  # [layer, head, key]
    col_px = int(max(1, min(24, max_width // max(n_keys, 1))))
    labels = col_px >= 9
    f = font(max(8, min(11, col_px - 2)))
    label_h = (max((int(f.getlength(t)) for t in _labels(key_tokens)), default=0) + 8) if labels else 4
    left, top, gap = 44, 28, 2
    body_h = n_layers * (n_heads * row_px + gap)
    width = max(left + n_keys * col_px + 8, int(font(14).getlength(title)) + 12)
    canvas = np.full((top + body_h + label_h, width), WHITE, np.uint8)
    ink = Image.new("L", (canvas.shape[1], canvas.shape[0]), 0)
    draw = ImageDraw.Draw(ink)
    draw.text((4, 6), title, fill=255, font=font(14))
    small = font(10)
    every = max(1, int(np.ceil(12 / (n_heads * row_px + gap))))  # label every layer that has room
    for layer in range(n_layers):
        y = top + layer * (n_heads * row_px + gap)
        block = np.repeat(np.repeat(index[layer], row_px, axis=0), col_px, axis=1)
        canvas[y:y + block.shape[0], left:left + block.shape[1]] = block
        if layer % every == 0:
            draw.text((left - 4, y + n_heads * row_px / 2), f"L{layer}", fill=255, font=small, anchor="rm")
    if labels:
        strip = Image.new("L", (label_h, n_keys * col_px), 0)
        d2 = ImageDraw.Draw(strip)
        for j, t in enumerate(_labels(key_tokens)):
            d2.text((label_h - 4, j * col_px + col_px // 2), t, fill=255, font=f, anchor="rm")
        ink.paste(strip.rotate(90, expand=True), (left, top + body_h))
    return palette_image(canvas, ink, colorscale)
