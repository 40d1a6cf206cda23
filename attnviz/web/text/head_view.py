"""Text view *Head view*: token-to-token lines of the focused layer's heads (queries left, keys right), one colour
per head, only the edges that matter (top-k per token, a share of each token's attention, or a threshold)."""
from __future__ import annotations

import streamlit as st

from attnviz.analysis import EdgeRule, segment_mask
from attnviz.analysis.edges import DIRECTIONS
from attnviz.render.graph import KEY_TRACE, QUERY_TRACE, graph_figure, graph_png, graph_svg, head_graph
from attnviz.web.text.context import TextContext, token_label
from attnviz.web.widgets import Download, download_strip

LABEL = "Head view"
ALL_HEADS_UP_TO = 64
"""The head view starts with every head of the layer up to this many tokens, else with the focused head only."""
RULE_LABELS = {"top_k": "top-k per token", "mass": "share of each token's attention", "threshold": "weight ≥"}
CONTRIBUTION_RULE_LABELS = {**RULE_LABELS, "mass": "share of each token's contributions",
                            "threshold": "contribution ≥"}


def _on_graph_select() -> None:
    """A click on a token marker focuses that token (a click on empty space clears the focus)."""
    state = st.session_state.get("graph_fig")
    points = (state.selection.points if state else None) or []
    token = next((p for p in points if p.get("curve_number") in (QUERY_TRACE, KEY_TRACE)), None)
    if token is None:
        st.session_state["graph_token"] = None
        return
    st.session_state["graph_token"] = int(token["point_index"])
    st.session_state["graph_side"] = "query" if token["curve_number"] == QUERY_TRACE else "key"


def _edge_rule(contributions: bool = False) -> EdgeRule:
    labels = CONTRIBUTION_RULE_LABELS if contributions else RULE_LABELS
    kind = st.radio("Keep edges", list(labels), format_func=labels.get, key="graph_rule",
                    help="Long inputs stay readable: each head keeps only its strongest edges per query token.")
    if kind == "top_k":
        return EdgeRule("top_k", st.slider("k (edges per token)", 1, 20, 3, key="graph_k"))
    if kind == "mass":
        return EdgeRule("mass", st.slider(f"Share of each token's {'contributions' if contributions else 'attention'}",
                                          0.05, 1.0, 0.5, 0.05, key="graph_mass",
                                          help="The fewest, strongest edges holding at least this share."))
    return EdgeRule("threshold", st.slider(f"Minimum {'contribution' if contributions else 'weight'}", 0.01, 1.0,
                                           0.1, 0.01, key="graph_min"))


def show(ctx: TextContext) -> None:
    """The chosen heads of the focused layer as lines, a token to focus, the sentence-pair filter, PNG and SVG."""
    result, tokens, layer, stem = ctx.result, ctx.tokens, ctx.layer, ctx.stem
    n = len(tokens)
    st.caption(f"Each line joins a query token (left) to a key token (right); its opacity is the {ctx.measure} "
               "relative to the strongest line shown, its colour the head. Click a token to show only its lines "
               "(click empty space to show all again); click a legend entry to hide a head.")
    options = list(range(result.n_heads))
    if st.session_state.get("graph_heads_input") != stem:  # a new input starts from the default heads
        st.session_state["graph_heads_input"] = stem
        st.session_state["graph_heads"] = options if n <= ALL_HEADS_UP_TO else [ctx.head]
    heads = st.segmented_control("Heads", options, selection_mode="multi", key="graph_heads",
                                 format_func=lambda h: f"H{h}", help="Each head has its own colour.")
    c1, c2, c3 = st.columns([3, 3, 3])
    with c1:
        rule = _edge_rule(ctx.contributions)
    with c2:
        token = st.selectbox("Focus token", [None, *range(n)], key="graph_token",
                             format_func=lambda i: "— all tokens —" if i is None else token_label(tokens, i))
        side = st.radio("Show", ["query", "key"], key="graph_side",
                        format_func={"query": "its lines out (as query)", "key": "lines into it (as key)"}.get)
    direction = "all"
    if result.segments is not None:
        direction = c3.radio("Sentence pair", DIRECTIONS, key="graph_pair",
                             help="A is the first text, B the second: e.g. A→B shows A's tokens attending to B.")
    if not heads:
        st.info("Choose at least one head.")
        return
    heads = sorted(heads)
    allowed = None
    if direction != "all":
        keep = ctx.attention.keep
        segments = result.segments if keep is None else result.segments[keep]
        allowed = segment_mask(segments, direction)
    focus = None if token is None or token >= n else (side, int(token))
    shown = [rule.describe(ctx.measure)] + ([] if direction == "all" else [direction])  # in the title: in exports
    if ctx.contributions and "contribution" not in shown[0]:
        shown.append("contributions")
    title = " · ".join([result.model, f"layer {layer}", f"head {heads[0]}" if len(heads) == 1 else
                        f"{len(heads)} heads", *shown])
    graph = head_graph(ctx.attention.layer(layer, heads), tokens, tokens, rule, heads=heads, allowed=allowed,
                       focus=focus, title=title)
    st.caption(f"{len(graph.edges):,} lines · " + " · ".join(shown)
               + ("" if focus is None else f" · only {side} {token_label(tokens, focus[1])}"))
    st.plotly_chart(graph_figure(graph), key="graph_fig", on_select=_on_graph_select, selection_mode="points",
                    width="content", config={"displayModeBar": False})
    name = f"{stem}_layer{layer}_heads{'-'.join(map(str, heads))}_graph{ctx.suffix}"
    download_strip([Download(LABEL, "png", name, lambda: graph_png(graph, scale=2 if n <= 128 else 1)),
                    Download(LABEL, "svg", name, lambda: graph_svg(graph))], key="dl_text_graph")
