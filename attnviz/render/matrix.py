"""Small annotated heatmaps of arbitrary matrices (scores, weights, contexts) for the mechanisms lab, as SVG.

Unlike :func:`attnviz.render.figures.heatmap_figure` (attention weights in [0, 1], long token axes, interactive),
these show every number in its cell, written by the caller's ``number`` function (the mechanisms page passes
:func:`attnviz.mechanisms.format_number`: a tiny weight reads ``2.061e-09``, never ``0``), allow negative values
(diverging colours centred at 0) and ``-inf`` (masked, grey). They are a few cells each and every number is written,
so they are drawn as SVG (``st.image`` shows it as an image; "save image" keeps the SVG): a page of a dozen costs the
browser a fraction of a dozen Plotly charts (``bench/browser_cost.py``).
"""
from __future__ import annotations

from collections.abc import Callable
from html import escape

import numpy as np

from attnviz.render.colors import DEFAULT_COLORSCALE, DIVERGING_COLORSCALE, MASKED_RGB, lut

FONT_PX, CHAR_PX = 13, 7.8
"""Font size of the numbers and labels, and the width of one of their characters, generously."""
CELL_H, GAP, PAD, BAR_W = 30, 2, 6, 10


def short_number(x: float) -> str:
    """A number in at most 4 significant digits (``32``, ``0.2155``, ``2e-09``, ``-inf``): the default label."""
    return f"{float(x):.4g}"


def scale_of(m: np.ndarray, weights: bool, colorscale: str) -> tuple[str, float, float]:
    """Colour scale and its range: weights 0..1; both signs: diverging, symmetric around 0; else min..max."""
    vals = m[np.isfinite(m)]
    lo, hi = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 1.0)
    if weights:
        return colorscale, 0.0, 1.0
    if lo < 0 < hi:
        bound = max(-lo, hi)
        return DIVERGING_COLORSCALE, -bound, bound
    return colorscale, lo, hi if hi > lo else lo + 1


def hex_colour(rgb: np.ndarray) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb))


def ink_on(rgb: np.ndarray) -> str:
    """Black or white text, whichever reads better on ``rgb``."""
    r, g, b = (float(c) / 255 for c in rgb)
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "#ffffff"


def value_heatmap(matrix: np.ndarray, row_labels: list[str], col_labels: list[str], weights: bool = False,
                  colorscale: str = DEFAULT_COLORSCALE, text: list[list[str]] | None = None, title: str = "",
                  number: Callable[[float], str] = short_number) -> str:
    """SVG heatmap of ``[rows, cols]`` with each value written in its cell, column labels on top, row labels on
    the left, a colour bar on the right and ``title`` (if any) above.

    Args:
        matrix: float ``[rows, cols]`` (a vector is one row); ``-inf`` (and other non-finite) cells are grey.
        weights: values are probabilities: colour from 0 to 1 with ``colorscale``; otherwise a diverging scale
            centred at 0 when the values have both signs.
        text: the label of every cell, ``[rows][cols]``, when the numbers alone cannot say it (e.g. a weight that
            underflowed to 0, labelled from its log by :func:`attnviz.mechanisms.fmt.format_probabilities`).
        number: writes a value (the cells without ``text``, and the ends of the colour bar).
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim == 1:
        m = m[None, :]
    if m.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"matrix {m.shape} does not match {len(row_labels)} x {len(col_labels)} labels")
    if text is None:
        text = [[number(v) for v in row] for row in m]
    elif np.shape(text) != m.shape:
        raise ValueError(f"{np.shape(text)} labels for a {m.shape} matrix")
    name, zmin, zmax = scale_of(m, weights, colorscale)
    table = lut(name)
    finite = np.isfinite(m)
    with np.errstate(all="ignore"):  # halved, so that values near the float64 maximum do not overflow
        frac = (np.where(finite, m, zmin) / 2 - zmin / 2) / (zmax / 2 - zmin / 2)
    idx = np.round(np.clip(np.nan_to_num(frac, nan=0.0), 0, 1) * 255).astype(int)

    rows, cols = m.shape
    cell_w = int(max(56, CHAR_PX * max(len(t) for row in text for t in row) + 16))
    left = int(CHAR_PX * max(len(r) for r in row_labels)) + 2 * PAD
    title_h = FONT_PX + 2 * PAD if title else 0
    top = title_h + FONT_PX + 2 * PAD
    body_w, body_h = cols * cell_w, rows * CELL_H
    bar_h = max(body_h, 2 * FONT_PX + 8)
    low, high = number(zmin), number(zmax)
    bar_x = left + body_w + 3 * PAD
    width = int(max(bar_x + BAR_W + PAD + CHAR_PX * max(len(low), len(high)) + PAD, CHAR_PX * len(title) + 2 * PAD))
    height = int(top + bar_h + PAD)
    font = f'font-family="DejaVu Sans, Arial, sans-serif" font-size="{FONT_PX}"'
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" {font}>', f'<rect width="{width}" height="{height}" fill="#ffffff"/>']
    if title:
        out.append(f'<text x="{PAD}" y="{PAD}" dominant-baseline="hanging" font-weight="bold" '
                   f'fill="#333333">{escape(title)}</text>')
    for j, label in enumerate(col_labels):
        out.append(f'<text x="{left + j * cell_w + cell_w / 2:g}" y="{top - PAD}" text-anchor="middle" '
                   f'fill="#333333">{escape(label)}</text>')
    for i, label in enumerate(row_labels):
        y = top + i * CELL_H
        out.append(f'<text x="{left - PAD}" y="{y + CELL_H / 2:g}" text-anchor="end" dominant-baseline="central" '
                   f'fill="#333333">{escape(label)}</text>')
        for j in range(cols):
            rgb = table[idx[i, j]] if finite[i, j] else MASKED_RGB
            x = left + j * cell_w
            out.append(f'<rect x="{x + GAP / 2:g}" y="{y + GAP / 2:g}" width="{cell_w - GAP}" height="{CELL_H - GAP}" '
                       f'fill="{hex_colour(rgb)}"/>'
                       f'<text x="{x + cell_w / 2:g}" y="{y + CELL_H / 2:g}" text-anchor="middle" '
                       f'dominant-baseline="central" fill="{ink_on(rgb)}">{escape(text[i][j])}</text>')
    # the colour bar: its scale from bottom (zmin) to top (zmax)
    stops = "".join(f'<stop offset="{k / 10:g}" stop-color="{hex_colour(table[round(255 * (1 - k / 10))])}"/>'
                    for k in range(11))
    out += [f'<defs><linearGradient id="bar" x1="0" y1="0" x2="0" y2="1">{stops}</linearGradient></defs>',
            f'<rect x="{bar_x}" y="{top}" width="{BAR_W}" height="{bar_h}" fill="url(#bar)"/>',
            f'<text x="{bar_x + BAR_W + 4}" y="{top}" dominant-baseline="hanging" font-size="10" '
            f'fill="#333333">{escape(high)}</text>',
            f'<text x="{bar_x + BAR_W + 4}" y="{top + bar_h}" font-size="10" fill="#333333">{escape(low)}</text>',
            "</svg>"]
    return "".join(out)
