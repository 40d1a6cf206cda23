"""Token-to-token line graphs (the "head view"): queries in a left column, keys in a right column, a line per
kept edge whose opacity follows its weight, one colour per head.

One graph serves self-attention and cross-attention (queries = output tokens, keys = input tokens, different
lengths). It is prepared once (:func:`head_graph`: edge selection, layout) and drawn three ways:

- :func:`graph_figure`: an interactive Plotly figure. Lines are grouped into one SVG path per (head, opacity
  level) (a layout shape), so 20k edges are at most ``heads * 8`` paths, never one element per edge.
  Traces 0 and 1 are the query and key token markers (selectable, to focus one token).
- :func:`graph_svg`: a standalone SVG document (token text is XML-escaped).
- :func:`graph_png`: a PNG drawn on the server with Pillow.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from xml.sax.saxutils import escape

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw

from attnviz.analysis.edges import EdgeRule, Edges, select_edges
from attnviz.render.figures import plotly_text
from attnviz.render.raster import BACKGROUND, INK, font, png_bytes

HEAD_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf", "#393b79", "#ad494a")
"""One colour per head (d3's category10 and two more), cycled past 12 heads."""
LEVELS = 8
"""Opacity levels: an edge's opacity is its weight over the strongest shown weight, rounded up to 1/8 steps."""
QUERY_TRACE, KEY_TRACE = 0, 1
"""Indices of the token-marker traces in :func:`graph_figure` (their point index is the token position)."""
MAX_LABEL_CHARS = 22
SPACIOUS_UP_TO = 40
"""Up to this many tokens per column, rows are 22 px apart (else 16 px)."""
MIN_FIGURE_HEIGHT = 320
"""The interactive figure is at least this tall, so the head legend on its right fits."""
FOCUS_COLOR = "#d62728"


@dataclass(frozen=True)
class GraphLayout:
    """Pixel geometry shared by the figure, the SVG and the PNG (one token row is ``row`` px tall).

    Queries sit at ``x = query_x``, keys at ``x = key_x``; token ``i`` of either column at ``y = y(i)``.
    """

    n_query: int
    n_key: int
    row: int = 16
    label: int = 170  # width of a token-label column
    gap: int = 300  # horizontal space for the lines
    top: int = 66  # title, head legend and column headings
    bottom: int = 12

    @property
    def width(self) -> int:
        return 2 * self.label + self.gap

    @property
    def height(self) -> int:
        return self.top + max(self.n_query, self.n_key) * self.row + self.bottom

    @property
    def query_x(self) -> float:
        return float(self.label)

    @property
    def key_x(self) -> float:
        return float(self.label + self.gap)

    def y(self, positions: np.ndarray | int) -> np.ndarray:
        """Vertical centre of token rows (the shorter column is centred against the longer)."""
        return self.top + (np.asarray(positions, dtype=np.float64) + 0.5) * self.row

    def query_y(self, positions: np.ndarray | int) -> np.ndarray:
        return self.y(positions) + (max(self.n_query, self.n_key) - self.n_query) * self.row / 2

    def key_y(self, positions: np.ndarray | int) -> np.ndarray:
        return self.y(positions) + (max(self.n_query, self.n_key) - self.n_key) * self.row / 2


@dataclass(frozen=True)
class HeadGraph:
    """A prepared line graph: the kept edges, the labels and the geometry.

    Attributes:
        edges: kept edges; ``edges.head`` indexes ``heads``.
        heads: the head number of each matrix of the stack (legend labels ``H{n}`` and colours).
        vmax: weight drawn fully opaque (the strongest kept weight).
        focus: ``("query", i)`` or ``("key", j)`` when only one token's lines are shown.
    """

    edges: Edges
    query_tokens: list[str]
    key_tokens: list[str]
    heads: list[int]
    layout: GraphLayout
    vmax: float
    title: str = ""
    sides: tuple[str, str] = ("query", "key")
    focus: tuple[str, int] | None = None
    rule: EdgeRule = EdgeRule()

    def levels(self) -> np.ndarray:
        """Opacity level ``1..LEVELS`` of each edge, ``[edge]`` int."""
        if not len(self.edges):
            return np.zeros(0, dtype=np.int64)
        rel = self.edges.weight / (self.vmax or 1.0)
        return np.clip(np.ceil(rel * LEVELS), 1, LEVELS).astype(np.int64)

    def groups(self):
        """Yield ``(head_index, level, edges)`` for every non-empty (head, opacity level) group."""
        levels = self.levels()
        for hi in range(len(self.heads)):
            in_head = self.edges.head == hi
            for lvl in range(1, LEVELS + 1):
                sel = in_head & (levels == lvl)
                if sel.any():
                    yield hi, lvl, self.edges.where(sel)


def head_graph(matrices: np.ndarray, query_tokens: list[str], key_tokens: list[str], rule: EdgeRule = EdgeRule(),
               *, heads: list[int] | None = None, allowed: np.ndarray | None = None,
               focus: tuple[str, int] | None = None, title: str = "",
               sides: tuple[str, str] = ("query", "key")) -> HeadGraph:
    """Select the edges of one or more heads and lay them out.

    Args:
        matrices: ``[head, query, key]`` attention of the heads to draw (one layer's heads, or a subset).
        query_tokens: ``[query]`` labels (left column); key_tokens: ``[key]`` labels (right column).
        rule: which edges each head keeps per query row (threshold, top-k or mass share).
        heads: head number of each matrix (default ``0..head-1``): legend labels and colours.
        allowed: optional bool ``[query, key]`` (e.g. a sentence-pair filter); other edges are dropped.
        focus: ``("query", i)`` or ``("key", j)``: keep only that token's lines.
        sides: headings of the two columns, e.g. ``("output", "input")`` for cross-attention.
    """
    m = np.asarray(matrices, dtype=np.float32)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3 or m.shape[1:] != (len(query_tokens), len(key_tokens)):
        raise ValueError(f"attention of shape {m.shape} does not match {len(query_tokens)} query and "
                         f"{len(key_tokens)} key tokens ([head, query, key])")
    heads = list(range(m.shape[0])) if heads is None else [int(h) for h in heads]
    if len(heads) != m.shape[0]:
        raise ValueError(f"{len(heads)} head numbers for {m.shape[0]} matrices")
    edges = select_edges(m, rule, allowed)
    if focus is not None:
        side, pos = focus
        if side not in ("query", "key"):
            raise ValueError(f"focus side must be 'query' or 'key', got {side!r}")
        edges = edges.where((edges.query if side == "query" else edges.key) == int(pos))
    vmax = float(edges.weight.max()) if len(edges) else 1.0
    n = max(m.shape[1:])
    layout = GraphLayout(m.shape[1], m.shape[2], row=22 if n <= SPACIOUS_UP_TO else 16)
    return HeadGraph(edges, list(query_tokens), list(key_tokens), heads, layout, vmax, title, tuple(sides), focus,
                     rule)


def head_color(head: int) -> str:
    return HEAD_COLORS[head % len(HEAD_COLORS)]


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def short_label(token: str, limit: int = MAX_LABEL_CHARS) -> str:
    """A token label cut to ``limit`` characters (with an ellipsis), newlines shown as ``\\n``."""
    t = token.replace("\n", "\\n").replace("\r", "\\r")
    return t if len(t) <= limit else t[: limit - 1] + "…"


def _segments(g: HeadGraph, e: Edges) -> tuple[np.ndarray, np.ndarray]:
    """x and y arrays ``[3 * edge]`` of NaN-separated segments from query to key."""
    lay = g.layout
    n = len(e)
    x = np.empty(3 * n, dtype=np.float32)
    y = np.empty(3 * n, dtype=np.float32)
    x[0::3], x[1::3], x[2::3] = lay.query_x + 6, lay.key_x - 6, np.nan
    y[0::3], y[1::3], y[2::3] = lay.query_y(e.query), lay.key_y(e.key), np.nan
    return x, y


def _focused(g: HeadGraph, side: str, n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    if g.focus is not None and g.focus[0] == side:
        mask[g.focus[1]] = True
    return mask


def _path(g: HeadGraph, e: Edges) -> str:
    """SVG path data of the edges' segments: ``M x0 y0 L x1 y1`` per edge, in whole pixels (token rows are a whole
    number of pixels apart, so nothing is lost; a short path is quicker to send and to parse)."""
    x, y = _segments(g, e)
    xy = np.rint(np.stack([x[0::3], y[0::3], x[1::3], y[1::3]], axis=1)).astype(np.int64)  # [edge, 4]
    return "".join(f"M{a} {b}L{c} {d}" for a, b, c, d in xy.tolist())


def graph_figure(g: HeadGraph) -> go.Figure:
    """The interactive line graph. Click a token marker to select it (Streamlit ``on_select``); click a legend
    entry to hide or show a head. Coordinates are pixels of :class:`GraphLayout`.

    Lines are layout shapes, one SVG path per (head, opacity level) in the head's legend group: a scatter trace
    with NaN gaps would become one DOM path per edge (18k at 512 tokens, seconds to draw). Token markers are
    uniformly styled (fast); the focused token is an extra one-point trace on top.
    """
    lay = g.layout
    fig = go.Figure()
    for side, tokens, x, ys, pos in (("query", g.query_tokens, lay.query_x, lay.query_y, "middle left"),
                                     ("key", g.key_tokens, lay.key_x, lay.key_y, "middle right")):
        idx = np.arange(len(tokens))
        heading = g.sides[0] if side == "query" else g.sides[1]
        focused = _focused(g, side, len(tokens))  # its label is drawn by the focus trace instead
        fig.add_trace(go.Scatter(
            x=np.full(len(tokens), x, dtype=np.float32), y=ys(idx).astype(np.float32), mode="markers+text",
            text=["" if f else plotly_text(short_label(t)) for t, f in zip(tokens, focused, strict=True)],
            textposition=pos, cliponaxis=False,
            textfont=dict(size=11, color="#303030"), marker=dict(size=7, color="#9a9a9a"),
            selected=dict(marker=dict(opacity=1)),  # a click focuses a token; Plotly must not fade the others
            unselected=dict(marker=dict(opacity=1), textfont=dict(color="#303030")),
            customdata=idx, hovertext=[plotly_text(t) for t in tokens], name=f"{heading} tokens", showlegend=False,
            hovertemplate=f"{heading} %{{customdata}}: %{{hovertext}}<br>click to show only its lines<extra></extra>",
        ))
    for head in g.heads:  # legend entries (one per head, toggling the head's group of shapes)
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=dict(color=head_color(head), width=3),
                                 name=f"H{head}", legendgroup=f"H{head}", hoverinfo="skip"))
    if g.focus is not None:
        side, i = g.focus
        tokens = g.query_tokens if side == "query" else g.key_tokens
        x, y = (lay.query_x, lay.query_y(i)) if side == "query" else (lay.key_x, lay.key_y(i))
        fig.add_trace(go.Scatter(
            x=[x], y=[float(y)], mode="markers+text", text=[f"<b>{plotly_text(short_label(tokens[i]))}</b>"],
            textposition="middle left" if side == "query" else "middle right", cliponaxis=False,
            textfont=dict(size=11, color=FOCUS_COLOR), marker=dict(size=11, color=FOCUS_COLOR),
            showlegend=False, hoverinfo="skip"))
    shapes = []
    for hi, lvl, e in g.groups():
        r, gr, b = _rgb(head_color(g.heads[hi]))
        shapes.append(dict(type="path", path=_path(g, e), xref="x", yref="y", layer="below",
                           legendgroup=f"H{g.heads[hi]}",
                           line=dict(width=1.6, color=f"rgba({r},{gr},{b},{lvl / LEVELS:.3f})")))
    annotations = [dict(x=lay.query_x, y=lay.top - 10, text=f"<b>{plotly_text(g.sides[0])}</b>", xanchor="right"),
                   dict(x=lay.key_x, y=lay.top - 10, text=f"<b>{plotly_text(g.sides[1])}</b>", xanchor="left")]
    height = max(lay.height, MIN_FIGURE_HEIGHT)
    fig.update_layout(
        width=lay.width + 90, height=height, margin=dict(l=0, r=90, t=0, b=0),
        title=dict(text=plotly_text(g.title), x=0.01, y=1 - 16 / height, yanchor="middle", font=dict(size=14)),
        xaxis=dict(range=[0, lay.width], visible=False, fixedrange=True),
        yaxis=dict(range=[height, 0], visible=False, fixedrange=True),
        annotations=[dict(a, yanchor="bottom", showarrow=False, xref="x", yref="y", font=dict(size=12))
                     for a in annotations],
        legend=dict(x=1.0, xanchor="left", y=1 - 30 / height, yanchor="top", title=dict(text="head"),
                    font=dict(size=11), tracegroupgap=0, itemclick="toggle", itemdoubleclick="toggleothers"),
        plot_bgcolor="white", paper_bgcolor="white", hovermode="closest", clickmode="event+select",
        dragmode=False, showlegend=True, shapes=shapes,
    )
    return fig


# ---------------------------------------------------------------------------------------------------- SVG

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_text(text: str) -> str:
    """Text made safe as XML character data: characters XML cannot hold are dropped, ``& < >`` escaped."""
    return escape(_XML_INVALID.sub("", text))


def graph_svg(g: HeadGraph) -> str:
    """The line graph as a standalone SVG document (UTF-8 text). One ``<path>`` per (head, opacity level)."""
    lay = g.layout
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{lay.width}" height="{lay.height}" '
           f'viewBox="0 0 {lay.width} {lay.height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="11">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="8" y="20" font-size="14" fill="#282828">{xml_text(g.title)}</text>',
           f'<text x="{lay.query_x:.1f}" y="{lay.top - 10}" text-anchor="end" font-weight="bold">'
           f'{xml_text(g.sides[0])}</text>',
           f'<text x="{lay.key_x:.1f}" y="{lay.top - 10}" font-weight="bold">{xml_text(g.sides[1])}</text>']
    legend_x = 8
    for head in g.heads:
        out.append(f'<rect x="{legend_x + 120}" y="{lay.top - 40}" width="10" height="10" fill="{head_color(head)}"/>'
                   f'<text x="{legend_x + 133}" y="{lay.top - 31}" font-size="10">H{head}</text>')
        legend_x += 36
    for hi, lvl, e in g.groups():
        out.append(f'<path d="{_path(g, e)}" fill="none" stroke="{head_color(g.heads[hi])}" '
                   f'stroke-opacity="{lvl / LEVELS:.3f}" stroke-width="1.6"/>')
    for side, tokens, x, ys, anchor, dx in (("query", g.query_tokens, lay.query_x, lay.query_y, "end", -8),
                                             ("key", g.key_tokens, lay.key_x, lay.key_y, "start", 8)):
        focused = _focused(g, side, len(tokens))
        for i, (t, yy) in enumerate(zip(tokens, ys(np.arange(len(tokens))), strict=True)):
            color = FOCUS_COLOR if focused[i] else "#303030"
            out.append(f'<circle cx="{x:.1f}" cy="{yy:.1f}" r="3" fill="{color if focused[i] else "#9a9a9a"}"/>'
                       f'<text x="{x + dx:.1f}" y="{yy + 4:.1f}" text-anchor="{anchor}" fill="{color}">'
                       f'<title>{xml_text(f"{side} {i}: {t}")}</title>{xml_text(short_label(t))}</text>')
    out.append("</svg>")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------- PNG

def _draw_lines(img: Image.Image, g: HeadGraph, scale: int) -> None:
    """Composite each head's lines onto ``img``: per head, an 8-bit mask holds every line at its level's opacity
    (stronger lines drawn last), then the head's colour is pasted through it. Lines are 1 px per ``scale``
    (Pillow's wide lines are polygons, ~20x slower) and, as in the SVG, do not darken where they cross."""
    lay = g.layout
    x0, x1 = int(lay.query_x) * scale, int(lay.key_x) * scale + 1
    levels = g.levels()
    for hi, head in enumerate(g.heads):
        in_head = np.flatnonzero(g.edges.head == hi)
        if not in_head.size:
            continue
        in_head = in_head[np.argsort(levels[in_head], kind="stable")]  # weak first, strong on top
        e = g.edges
        ya, yb = lay.query_y(e.query[in_head]) * scale, lay.key_y(e.key[in_head]) * scale
        mask = Image.new("L", (x1 - x0, img.height), 0)
        draw = ImageDraw.Draw(mask)
        xa, xb = (lay.query_x + 6) * scale - x0, (lay.key_x - 6) * scale - x0
        for y_a, y_b, lvl in zip(ya.tolist(), yb.tolist(), levels[in_head].tolist(), strict=True):
            value = round(255 * lvl / LEVELS)
            for dy in range(scale):
                draw.line(((xa, y_a + dy), (xb, y_b + dy)), fill=value, width=1)
        img.paste(_rgb(head_color(head)), (x0, 0, x1, img.height), mask)


def graph_image(g: HeadGraph, scale: int = 1) -> Image.Image:
    """The line graph drawn with Pillow: ``(layout.width * scale, layout.height * scale)`` pixels, RGB."""
    lay = g.layout
    img = Image.new("RGB", (lay.width * scale, lay.height * scale), BACKGROUND)
    draw = ImageDraw.Draw(img, "RGBA")
    f = font(11 * scale)
    draw.text((8 * scale, 20 * scale), g.title, fill=INK, font=font(14 * scale), anchor="ls")
    bold = font(12 * scale)
    draw.text((lay.query_x * scale, (lay.top - 10) * scale), g.sides[0], fill=INK, font=bold, anchor="rs")
    draw.text((lay.key_x * scale, (lay.top - 10) * scale), g.sides[1], fill=INK, font=bold, anchor="ls")
    legend_x = 8
    for head in g.heads:
        x0, y0 = (legend_x + 120) * scale, (lay.top - 40) * scale
        draw.rectangle((x0, y0, x0 + 10 * scale, y0 + 10 * scale), fill=_rgb(head_color(head)))
        draw.text((x0 + 13 * scale, y0 + 9 * scale), f"H{head}", fill=INK, font=font(10 * scale), anchor="ls")
        legend_x += 36
    _draw_lines(img, g, scale)
    for side, tokens, x, ys, anchor, dx in (("query", g.query_tokens, lay.query_x, lay.query_y, "rm", -8),
                                             ("key", g.key_tokens, lay.key_x, lay.key_y, "lm", 8)):
        focused = _focused(g, side, len(tokens))
        for i, (t, yy) in enumerate(zip(tokens, ys(np.arange(len(tokens))), strict=True)):
            dot = _rgb(FOCUS_COLOR) if focused[i] else (154, 154, 154)
            r = 3 * scale
            draw.ellipse((x * scale - r, yy * scale - r, x * scale + r, yy * scale + r), fill=dot)
            draw.text(((x + dx) * scale, yy * scale), short_label(t), font=f, anchor=anchor,
                      fill=_rgb(FOCUS_COLOR) if focused[i] else INK)
    return img


def graph_png(g: HeadGraph, scale: int = 1) -> bytes:
    """PNG bytes of :func:`graph_image`."""
    return png_bytes(graph_image(g, scale))
