"""attnviz.render.graph: the head-view graph in its three forms (Plotly, SVG, PNG)."""
from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from attnviz.analysis.edges import EdgeRule
from attnviz.render.graph import (
    KEY_TRACE,
    LEVELS,
    QUERY_TRACE,
    graph_figure,
    graph_image,
    graph_png,
    graph_svg,
    head_graph,
)

SVG = "{http://www.w3.org/2000/svg}"


def random_heads(heads: int, queries: int, keys: int, seed: int = 0) -> np.ndarray:
    """``[head, query, key]`` with peaked rows (like real attention) summing to 1."""
    w = np.random.default_rng(seed).random((heads, queries, keys)) ** 6
    return (w / w.sum(-1, keepdims=True)).astype(np.float32)


def test_figure_traces_are_per_head_and_level_not_per_edge():
    w = random_heads(12, 512, 512)
    g = head_graph(w, [f"t{i}" for i in range(512)], [f"t{i}" for i in range(512)], EdgeRule("top_k", 3))
    assert len(g.edges) == 12 * 512 * 3
    fig = graph_figure(g)
    assert len(fig.data) == 2 + 12  # token markers and one legend entry per head
    assert len(fig.data[QUERY_TRACE].x) == 512 and len(fig.data[KEY_TRACE].x) == 512
    shapes = fig.layout.shapes
    assert len(shapes) <= 12 * LEVELS and {s.legendgroup for s in shapes} == {f"H{h}" for h in range(12)}
    assert sum(s.path.count("M") for s in shapes) == len(g.edges)  # every kept edge drawn exactly once


def test_opacity_follows_the_weight_and_each_head_has_one_colour():
    tokens = [f"t{i}" for i in range(20)]
    g = head_graph(random_heads(3, 20, 20), tokens, tokens, EdgeRule("top_k", 4), heads=[0, 4, 7])
    levels, weight = g.levels(), g.edges.weight
    assert np.all(np.diff(levels[np.argsort(weight, kind="stable")]) >= 0)  # a heavier line is never fainter
    assert levels[np.argmax(weight)] == LEVELS  # the strongest line shown is opaque
    colours: dict[str, set[str]] = {}
    for shape in graph_figure(g).layout.shapes:
        rgb, alpha = shape.line.color.rsplit(",", 1)
        level = round(float(alpha.rstrip(")")) * LEVELS)
        head = int(shape.legendgroup[1:])
        in_shape = (g.edges.head == g.heads.index(head)) & (levels == level)
        assert shape.path.count("M") == in_shape.sum()  # its lines are exactly that head's edges of that opacity
        colours.setdefault(shape.legendgroup, set()).add(rgb)
    assert set(colours) == {"H0", "H4", "H7"} and all(len(c) == 1 for c in colours.values())
    assert len(set.union(*colours.values())) == 3  # one colour per head, all different


def test_cross_attention_graph_with_different_lengths_and_focus():
    w = random_heads(2, 4, 9)
    outs, ins = [f"out{i}" for i in range(4)], [f"in{i}" for i in range(9)]
    g = head_graph(w, outs, ins, EdgeRule("mass", 0.8), heads=[3, 5], focus=("query", 2), sides=("output", "input"))
    assert len(g.edges) and (g.edges.query == 2).all()
    fig = graph_figure(g)
    assert [t.name for t in fig.data[2:4]] == ["H3", "H5"]
    g2 = head_graph(w, outs, ins, EdgeRule("top_k", 9), focus=("key", 7))
    assert (g2.edges.key == 7).all() and len(g2.edges) == 2 * 4
    with pytest.raises(ValueError, match="does not match"):
        head_graph(w, outs, outs)


def test_svg_is_valid_xml_and_escapes_token_text():
    tokens = ["<script>alert(1)</script>", "a & b", '"quoted"', "ctl\x00\x07", "]]>", "ok"]
    w = random_heads(2, 6, 6)
    svg = graph_svg(head_graph(w, tokens, tokens, EdgeRule("top_k", 2), title="<b>title</b>"))
    root = ET.fromstring(svg)  # well-formed, control characters dropped
    assert root.tag == f"{SVG}svg"
    assert not list(root.iter("script")) and not list(root.iter(f"{SVG}script"))
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    assert any("<script>alert(1)</script>" in t for t in texts)  # shown literally, as text
    assert any("a & b" in t for t in texts) and "<b>" not in svg
    assert len(list(root.iter(f"{SVG}path"))) <= 2 * LEVELS


def test_png_decodes_to_the_layout_size():
    tokens = [f"tok{i}" for i in range(30)]
    g = head_graph(random_heads(3, 30, 30), tokens, tokens, EdgeRule("top_k", 2), title="png")
    for scale in (1, 2):
        img = Image.open(io.BytesIO(graph_png(g, scale)))
        assert img.format == "PNG" and img.size == (g.layout.width * scale, g.layout.height * scale)
    # Lines are drawn in the head's colours between the two columns.
    arr = np.asarray(graph_image(g))
    middle = arr[g.layout.top:, int(g.layout.query_x) + 20: int(g.layout.key_x) - 20]
    assert (middle != 255).any()


def test_plotly_labels_are_escaped():
    tokens = ["<b>bold</b>", "x"]
    fig = graph_figure(head_graph(random_heads(1, 2, 2), tokens, tokens))
    assert "&lt;b&gt;bold&lt;/b&gt;" in fig.data[QUERY_TRACE].text[0]
