"""The Text page's tabbed views: the focused head, the per-layer fusion, the head view (token-to-token lines),
attention across layers (raw vs rollout vs flow) and head statistics. Widgets and cached calls only; numbers come from
:mod:`attnviz.analysis`, figures from :mod:`attnviz.render`.

Each view reads the focused ``layer`` / ``head`` chosen above the tabs (session keys ``text_layer`` and
``text_head``, kept in the URL); clicking a head in the statistics heatmap sets them.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from attnviz import ui, ui_flow
from attnviz.analysis import STATS, EdgeRule, fuse_heads, segment_mask
from attnviz.analysis.edges import DIRECTIONS
from attnviz.analysis.flow import FLOW_FULL_MAX_TOKENS, estimate_seconds
from attnviz.analysis.stats import token_masks
from attnviz.export import head_csv, head_title, matrix_csv, measures_csv, tokens_json, weights_npy
from attnviz.render import heatmap_figure, labelled_heatmap, png_bytes
from attnviz.render.figures import causal_mask
from attnviz.render.graph import KEY_TRACE, QUERY_TRACE, graph_figure, graph_png, graph_svg, head_graph
from attnviz.render.summary import STATS_OVERLAY_TRACE, profile_figure, stats_figure, top_keys
from attnviz.result import AttentionResult

Run = tuple[str, str, str | None]
"""A cached run: (model name, text, second text or None)."""

VIEWS = ("Focused head", "Per layer", "Head view", "Across layers", "Head statistics")
"""Tab labels of the Text page; the active one is in the URL (``text_view``), so renaming one breaks old links.
Only the open tab is computed and sent, so a Run draws one heatmap, not one per view."""

ALL_HEADS_UP_TO = 64
"""The head view starts with every head of the layer up to this many tokens, else with the focused head only."""
FLOW_FULL_AUTO_S = 4.0
"""The full flow matrix is computed (with a progress bar) when estimated to take at most this long."""
PROFILE_KEYS = 48
"""The across-layers bars show at most this many key tokens (the strongest in any measure)."""

COLUMN_LABELS = {"entropy": "entropy (nats)", "distance": "distance", "cls": "→ [CLS]", "sep": "→ [SEP]",
                 "punct": "→ punct.", "self": "→ self", "prev": "→ previous", "next": "→ next",
                 "sink": "→ first (sink)"}
"""Short table headers of the statistics (the full label is the column's tooltip)."""
RULE_LABELS = {"top_k": "top-k per token", "mass": "share of each token's attention", "threshold": "weight ≥"}
INTERACTIVE_UP_TO = 256
"""Longer inputs get the focused head and the per-layer matrix as an image unless "Interactive chart" is on: a cell
is then under 3.5 px on the 900 px chart (hover can hardly hit one), and a Plotly chart of 512 x 512 cells costs
the browser ~0.5 s of CPU per draw (``bench/browser_cost.py``), where the image costs the server ~0.05 s."""


def token_label(tokens: list[str], i: int) -> str:
    return f"{i}: {tokens[i]}"


# ------------------------------------------------------------------------------------- focused head, per layer

def _mask(result: AttentionResult, n: int) -> np.ndarray | None:
    """The keys a causal model cannot see (drawn grey, not as weight 0); None for encoders."""
    return causal_mask(n) if result.causal and result.key_tokens is None else None


def run_exports(run: Run, grid: Callable[[], bytes], stem: str) -> None:
    """Downloads of the whole run: the all-heads PNG (``grid()``), the weights and the tokens, made on click.

    Streamlit keeps a session's last download callables, so they name the run and fetch it from the shared cache
    (recomputing it if it has left): holding the result itself would keep it beyond the cache's bound."""
    e = st.container(horizontal=True)
    e.download_button("All heads (PNG)", data=grid, file_name=f"{stem}_grid.png", mime="image/png",
                      key="dl_grid_png", on_click="ignore")
    e.download_button("Weights (NPY)", key="dl_npy", mime="application/octet-stream", on_click="ignore",
                      file_name=f"{stem}_weights.npy", data=lambda: weights_npy(ui.run_text(*run).weights),
                      help="All heads, [layer, head, query, key], float32, as the model computed them.")
    e.download_button("Tokens (JSON)", key="dl_tokens", mime="application/json", on_click="ignore",
                      file_name=f"{stem}_tokens.json", data=lambda: tokens_json(ui.run_text(*run)))


def interactive(n: int, key: str) -> bool:
    """Whether the page draws its ``n``-token matrices as interactive charts: always up to
    :data:`INTERACTIVE_UP_TO` tokens, beyond that only once the session turns the toggle ``key`` on (one toggle
    serves every matrix below it)."""
    return n <= INTERACTIVE_UP_TO or st.toggle(
        "Interactive chart (hover and zoom)", key=key,
        help=f"Above {INTERACTIVE_UP_TO} tokens a matrix is shown as an image, which the browser draws at once. "
             "The interactive chart shows each cell's tokens and weight on hover, but takes the browser a second "
             "or more to draw.")


def matrix_image(image: Image.Image, n: int, caption: str = "") -> None:
    """A long input's ``n`` × ``n`` matrix as the PNG it is (its tokens go in :func:`token_positions`)."""
    st.image(png_bytes(image, compress_level=1), output_format="PNG",  # as it is: "auto" makes a JPEG of it
             caption=caption or f"{n} × {n} cells: queries down, keys across, in the order listed under \"Tokens "
                                "by position\". Turn on the interactive chart to read a cell's tokens and weight.")


def token_positions(key: str, lists: dict[str, list[str]]) -> None:
    """An expander listing each token list (``{label: tokens}``; label "" for none) as ``0·[CLS]   1·the …``: the
    rows and columns of matrices shown as images. Plain text (``st.text``): never read as Markdown or HTML."""
    with st.expander("Tokens by position (rows and columns)", key=key):
        for label, tokens in lists.items():
            st.text((f"{label}: " if label else "") + "   ".join(f"{i}·{t}" for i, t in enumerate(tokens)))


def matrix_view(matrix: np.ndarray, tokens: list[str], title: str, colorscale: str, masked: np.ndarray | None,
                key: str) -> None:
    """A ``[query, key]`` matrix as an interactive heatmap (hover, zoom); beyond :data:`INTERACTIVE_UP_TO` tokens
    as an image, one to three pixels per cell, unless the session turns "Interactive chart" on."""
    if interactive(len(tokens), "text_interactive"):
        st.plotly_chart(heatmap_figure(matrix, tokens, tokens, title, colorscale, masked=masked), key=key)
        return
    matrix_image(labelled_heatmap(matrix, tokens, tokens, title, colorscale, masked=masked), len(tokens))
    token_positions("text_token_positions", {"": tokens})


def matrix_png(matrix: np.ndarray, tokens: list[str], title: str, colorscale: str,
               masked: np.ndarray | None) -> Callable[[], bytes]:
    """The matrix as a labelled PNG, made when called (on a download click)."""
    return lambda: png_bytes(labelled_heatmap(matrix, tokens, tokens, title, colorscale, masked=masked))


def focused_head(result: AttentionResult, run: Run, weights: np.ndarray, tokens: list[str], layer: int, head: int,
                 colorscale: str, stem: str) -> None:
    """Interactive heatmap of one head, with PNG and CSV of it (made on click, without holding ``result``)."""
    st.subheader(f"Focused head: L{layer} H{head}")
    matrix, title = weights[layer, head].copy(), head_title(result, layer, head)  # a copy: not a view of all heads
    masked = _mask(result, len(tokens))
    matrix_view(matrix, tokens, title, colorscale, masked, "text_head_fig")
    e = st.container(horizontal=True)
    e.download_button("Focused head (PNG)", key="dl_head_png", mime="image/png", on_click="ignore",
                      file_name=f"{stem}_layer{layer}_head{head}.png",
                      data=matrix_png(matrix, tokens, title, colorscale, masked))
    e.download_button("Focused head (CSV)", key="dl_csv", mime="text/csv", on_click="ignore",
                      file_name=f"{stem}_layer{layer}_head{head}.csv",
                      data=lambda: head_csv(ui.run_text(*run), layer, head),
                      help="The model's weights of this head (before hiding tokens or thresholding).")


def per_layer(result: AttentionResult, weights: np.ndarray, tokens: list[str], layer: int, colorscale: str,
              stem: str) -> None:
    """One layer's heads fused by mean or max, as the focused head is shown, with PNG and CSV of what is shown."""
    how = st.radio("Fuse the layer's heads by", ["mean", "max"], horizontal=True, key="text_fusion")
    matrix = ui.layer_matrix(weights, layer, how)
    title = f"{result.model} · layer {layer} · {how} of {result.n_heads} heads"
    st.subheader(f"Layer {layer}: {how} over heads")
    masked = _mask(result, len(tokens))
    matrix_view(matrix, tokens, title, colorscale, masked, "text_layer_fig")
    e = st.container(horizontal=True)
    e.download_button("Layer (PNG)", key="dl_layer_png", mime="image/png", on_click="ignore",
                      file_name=f"{stem}_layer{layer}_{how}.png",
                      data=matrix_png(matrix, tokens, title, colorscale, masked))
    e.download_button("Layer (CSV)", key="dl_layer_csv", mime="text/csv", on_click="ignore",
                      file_name=f"{stem}_layer{layer}_{how}.csv", data=lambda: matrix_csv(matrix, tokens, tokens),
                      help="The fused matrix as shown (after hiding tokens and thresholding, if chosen).")


# ---------------------------------------------------------------------------------------------- head view

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


def _edge_rule() -> EdgeRule:
    kind = st.radio("Keep edges", list(RULE_LABELS), format_func=RULE_LABELS.get, key="graph_rule",
                    help="Long inputs stay readable: each head keeps only its strongest edges per query token.")
    if kind == "top_k":
        return EdgeRule("top_k", st.slider("k (edges per token)", 1, 20, 3, key="graph_k"))
    if kind == "mass":
        return EdgeRule("mass", st.slider("Share of each token's attention", 0.05, 1.0, 0.5, 0.05, key="graph_mass",
                                          help="The fewest, strongest edges holding at least this share."))
    return EdgeRule("threshold", st.slider("Minimum weight", 0.01, 1.0, 0.1, 0.01, key="graph_min"))


def head_view(result: AttentionResult, weights: np.ndarray, tokens: list[str], layer: int, head: int,
              hide_special: bool, stem: str) -> None:
    """Token-to-token lines of the chosen layer's heads (queries left, keys right).

    Args:
        weights: ``[layer, head, query, key]`` with the page's view options applied; ``tokens`` match it.
    """
    n = len(tokens)
    st.caption("Each line joins a query token (left) to a key token (right); its opacity is the weight relative "
               "to the strongest line shown, its colour the head. Click a token to show only its lines (click "
               "empty space to show all again); click a legend entry to hide a head.")
    options = list(range(result.n_heads))
    if st.session_state.get("graph_heads_input") != stem:  # a new input starts from the default heads
        st.session_state["graph_heads_input"] = stem
        st.session_state["graph_heads"] = options if n <= ALL_HEADS_UP_TO else [head]
    heads = st.segmented_control("Heads", options, selection_mode="multi", key="graph_heads",
                                 format_func=lambda h: f"H{h}", help="Each head has its own colour.")
    c1, c2, c3 = st.columns([3, 3, 3])
    with c1:
        rule = _edge_rule()
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
        segments = result.segments[~result.special] if hide_special else result.segments
        allowed = segment_mask(segments, direction)
    focus = None if token is None or token >= n else (side, int(token))
    shown = [rule.describe()] + ([] if direction == "all" else [direction])  # named in the title, so in exports
    title = " · ".join([result.model, f"layer {layer}", f"head {heads[0]}" if len(heads) == 1 else
                        f"{len(heads)} heads", *shown])
    graph = head_graph(weights[layer][heads], tokens, tokens, rule, heads=heads, allowed=allowed, focus=focus,
                       title=title)
    st.caption(f"{len(graph.edges):,} lines · " + " · ".join(shown)
               + ("" if focus is None else f" · only {side} {token_label(tokens, focus[1])}"))
    st.plotly_chart(graph_figure(graph), key="graph_fig", on_select=_on_graph_select, selection_mode="points",
                    width="content", config={"displayModeBar": False})
    e = st.container(horizontal=True)
    name = f"{stem}_layer{layer}_heads{'-'.join(map(str, heads))}_graph"
    e.download_button("Head view (PNG)", key="dl_graph_png", mime="image/png", on_click="ignore",
                      file_name=f"{name}.png", data=lambda: graph_png(graph, scale=2 if n <= 128 else 1))
    e.download_button("Head view (SVG)", key="dl_graph_svg", mime="image/svg+xml", on_click="ignore",
                      file_name=f"{name}.svg", data=lambda: graph_svg(graph))


# ------------------------------------------------------------------------------------------ across layers

def _flow_row(result: AttentionResult, run: Run, token: int) -> np.ndarray | None:
    """Flow of ``token``: from the full matrix, computed with progress per output token, when that takes at most
    ``FLOW_FULL_AUTO_S``; else the chosen token's row alone (:func:`attnviz.ui_flow.flow_row_view`: at once, after
    a click, or refused, by its cost); None when not computed (the page says why)."""
    n = result.n_tokens
    if estimate_seconds(result.n_layers, n) <= FLOW_FULL_AUTO_S:
        full = ui.cached_text_flow(*run)
        if full is None:
            bar = st.progress(0.0, text=f"Attention flow: 0 of {n} output tokens")
            full = ui.text_flow(*run, progress=lambda done, total: bar.progress(
                done / total, text=f"Attention flow: {done} of {total} output tokens"))
            bar.empty()
        return full[token]
    if ui_flow.row_seconds(result.weights) <= ui_flow.ROW_MAX_S:
        st.caption(f"Flow of all {n} tokens would take {ui_flow.duration(estimate_seconds(result.n_layers, n))} "
                   f"(practical up to {FLOW_FULL_MAX_TOKENS} tokens for a 6-layer model); it is computed for the "
                   "chosen token only.")
    return ui_flow.flow_row_view(("text", run[0], ui.digest(*run[1:])), result.weights, token,
                                 f"token {token_label(result.tokens, token)}", "flow_row_go")


def across_layers(result: AttentionResult, run: Run, layer: int, stem: str) -> None:
    """One output token's attention to every input token: the chosen layer (heads averaged), rollout and flow."""
    n = result.n_tokens
    st.caption("How much one output token draws on each input token. **Raw**: the chosen layer's attention, "
               "heads averaged. **Rollout** and **flow** (Abnar & Zuidema 2020) follow attention through every "
               "layer, with the residual connection as 0.5·I: rollout multiplies the per-layer matrices, flow "
               "treats them as capacities of a graph and takes the max-flow. All tokens are used, special ones "
               "included. Flow is costly (one max-flow per pair of tokens, growing as tokens⁴): longer inputs get "
               "it for the chosen token only, with a progress bar, and very long ones not at all.")
    labels = result.tokens  # the closures below keep the labels, not the result
    token = st.columns([2, 3])[0].selectbox("Output token", range(n), key="flow_token",
                                            format_func=lambda i: token_label(labels, i))
    raw = fuse_heads(result.weights[layer], "mean")[token]
    roll = ui.text_rollout(*run)[token]
    flow = _flow_row(result, run, token)
    rows = {f"Raw · layer {layer}, mean of heads": raw, "Rollout": roll, "Flow": flow}
    keys = top_keys(rows, PROFILE_KEYS)
    if len(keys) < n:
        st.caption(f"Showing the {len(keys)} input tokens with the largest value in any measure, in text order.")
    title = f"{result.model} · output token {token_label(result.tokens, token)}"
    st.plotly_chart(profile_figure(rows, result.tokens, title, keys=keys, highlight=token), key="flow_fig")
    e = st.container(horizontal=True)
    e.download_button("These values (CSV)", key="dl_flow_csv", mime="text/csv", on_click="ignore",
                      file_name=f"{stem}_token{token}_raw_rollout_flow.csv",
                      data=lambda: measures_csv(rows, labels))
    e.download_button("Rollout, all tokens (NPY)", key="dl_rollout_npy", mime="application/octet-stream",
                      on_click="ignore", file_name=f"{stem}_rollout.npy",
                      data=lambda: weights_npy(ui.text_rollout(*run)), help="[query, key] float32, rows sum to 1.")
    full = ui.cached_text_flow(*run)
    if full is not None:
        e.download_button("Flow, all tokens (NPY)", key="dl_flow_npy", mime="application/octet-stream",
                          on_click="ignore", file_name=f"{stem}_flow.npy", data=lambda: weights_npy(full),
                          help="[query, key] float32, rows sum to 1.")


# --------------------------------------------------------------------------------------- head statistics

def _on_stats_select() -> None:
    """A click on a cell of the statistics heatmap focuses that head (layer and head selectors above)."""
    state = st.session_state.get("stats_fig")
    points = (state.selection.points if state else None) or []
    cell = next((p for p in points if p.get("curve_number") == STATS_OVERLAY_TRACE), None)
    if cell is not None:
        st.session_state["text_layer"] = int(cell["y"])
        st.session_state["text_head"] = int(cell["x"])


def head_statistics(result: AttentionResult, run: Run, layer: int, head: int, stem: str) -> None:
    """A statistic per head as a layers × heads heatmap (click a cell to focus that head), the table of all
    statistics (sortable) and its CSV."""
    stats = ui.text_head_stats(*run)
    st.caption("Per head, averaged over query tokens (after Clark et al. 2019, *What Does BERT Look At?*): "
               "entropy in nats (ln n for uniform attention over n tokens), mean distance Σ w·|i−j| in tokens, "
               "and the share of attention on [CLS], [SEP], punctuation, the token itself, and the previous / next "
               "token. All tokens are used. Click a cell to focus that head.")
    masks = token_masks(result.tokens, result.special)
    if not masks["cls"].any() and not masks["sep"].any():
        st.caption("This input has no [CLS] or [SEP] token, so those shares are 0."
                   + (f" {result.model} is a decoder: such models often put much of each row on the first token "
                      "instead (an 'attention sink')." if result.causal else ""))
    stat = st.columns([2, 3])[0].selectbox("Statistic", list(STATS), format_func=STATS.get, key="stats_stat")
    st.plotly_chart(stats_figure(stats.get(stat), STATS[stat], focus=(layer, head)), key="stats_fig",
                    on_select=_on_stats_select, selection_mode="points", config={"displayModeBar": False})
    st.caption(f"Focused head (outlined): **L{layer} H{head}**, shown in the *Focused head* and *Head view* tabs.")
    table = pd.DataFrame(stats.rows())
    st.dataframe(table, hide_index=True, key="stats_table", column_config={
        "layer": st.column_config.NumberColumn("layer", format="L%d"),
        "head": st.column_config.NumberColumn("head", format="H%d"),
        **{s: st.column_config.NumberColumn(COLUMN_LABELS[s], help=STATS[s], format="%.3f") for s in STATS}})
    st.download_button("Head statistics (CSV)", key="dl_stats_csv", mime="text/csv", on_click="ignore",
                       file_name=f"{stem}_head_stats.csv", data=stats.csv())
