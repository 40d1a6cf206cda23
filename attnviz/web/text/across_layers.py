"""Text view *Across layers*: how much one output token draws on each input token, by the focused layer's raw
attention (heads averaged), rollout and flow (Abnar & Zuidema 2020)."""
from __future__ import annotations

import numpy as np
import streamlit as st

from attnviz.analysis import rollout
from attnviz.analysis.flow import FLOW_FULL_MAX_TOKENS, Progress, estimate_seconds, flow_rows
from attnviz.analysis.rollout import ROLLOUT_MAX_TOKENS, rollout_row
from attnviz.cache import BoundedCache
from attnviz.export import measures_csv
from attnviz.render.summary import profile_figure, top_keys
from attnviz.web import flow
from attnviz.web.runs import DERIVED_ENTRIES, RESULT_TTL_S, TextRun
from attnviz.web.text.context import TextContext, token_label
from attnviz.web.widgets import Download, download_strip

LABEL = "Across layers"
FLOW_FULL_AUTO_S = 4.0
"""The full flow matrix is computed (with a progress bar) when estimated to take at most this long."""
PROFILE_KEYS = 48
"""The bars show at most this many key tokens (the strongest in any measure)."""

FLOWS: BoundedCache[np.ndarray] = BoundedCache(32 * 2**20, RESULT_TTL_S, lambda flow_matrix: flow_matrix.nbytes)
"""Full flow matrices ``[query, key]`` by run key, shared by all sessions (not ``st.cache_data``, which would
replay the progress bar); only inputs of up to ~64 tokens get one, so 32 MB holds hundreds."""


ROLLOUT_ROWS: BoundedCache[np.ndarray] = BoundedCache(16 * 2**20, RESULT_TTL_S, lambda row: row.nbytes)
"""One token's rollout ``[key]`` by (run key, token), for inputs past ``ROLLOUT_MAX_TOKENS`` (shared by all
sessions; 16 MB holds a thousand 4,096-token rows)."""


@st.cache_data(show_spinner=False, max_entries=DERIVED_ENTRIES, ttl=RESULT_TTL_S)
def text_rollout(key: tuple[str, str, str], _run: TextRun) -> np.ndarray:
    """Rollout ``[query, key]`` of a cached text run (all tokens, heads averaged); ``key`` is ``_run.key``. Only up
    to ``ROLLOUT_MAX_TOKENS`` tokens (longer inputs: :func:`token_rollout`)."""
    return rollout(_run.result())


def token_rollout(run: TextRun, token: int) -> np.ndarray:
    """One token's rollout ``[key]`` (a vector pushed through the layers), with a progress bar by layer on long
    inputs; the whole rollout's row when that is cached or cheap."""
    result = run.result()
    if result.n_tokens <= ROLLOUT_MAX_TOKENS:
        return text_rollout(run.key, run)[token]
    cached = ROLLOUT_ROWS.get((run.key, token))
    if cached is not None:
        return cached
    bar = st.progress(0.0, text="Rollout: layer 0")

    def report(done: int, total: int) -> None:
        bar.progress(done / total, text=f"Rollout of this token: {done} of {total} layers")

    row = ROLLOUT_ROWS.get_or_compute((run.key, token), lambda: rollout_row(result, token, progress=report))
    bar.empty()
    return row


def full_flow(run: TextRun, progress: Progress | None = None) -> np.ndarray:
    """Full attention flow ``[query, key]`` of a text run, reporting ``progress(done, total)`` per output token."""
    return FLOWS.get_or_compute(run.key, lambda: flow_rows(run.result().weights, progress=progress))


def _flow_row(ctx: TextContext, token: int) -> np.ndarray | None:
    """Flow of ``token``: from the full matrix, computed with progress per output token, when that takes at most
    ``FLOW_FULL_AUTO_S``; else the chosen token's row alone (:func:`attnviz.web.flow.flow_row_view`: at once, after
    a click, or refused, by its cost); None when not computed (the page says why)."""
    result, run = ctx.result, ctx.run
    n = result.n_tokens
    if estimate_seconds(result.n_layers, n) <= FLOW_FULL_AUTO_S:
        full = FLOWS.get(run.key)
        if full is None:
            bar = st.progress(0.0, text=f"Attention flow: 0 of {n} output tokens")
            full = full_flow(run, progress=lambda done, total: bar.progress(
                done / total, text=f"Attention flow: {done} of {total} output tokens"))
            bar.empty()
        return full[token]
    if flow.row_seconds(result) <= flow.ROW_MAX_S:
        st.caption(f"Flow of all {n} tokens would take {flow.duration(estimate_seconds(result.n_layers, n))} "
                   f"(practical up to {FLOW_FULL_MAX_TOKENS} tokens for a 6-layer model); it is computed for the "
                   "chosen token only.")
    return flow.flow_row_view(run.key, result, token, f"token {token_label(result.tokens, token)}",
                              "flow_row_go")


def show(ctx: TextContext) -> None:
    """One output token (select box ``flow_token``): raw, rollout and flow as bars, with CSV and NPY downloads."""
    result, run, layer = ctx.result, ctx.run, ctx.layer
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
    raw = np.mean([result.row(layer, h, token) for h in range(result.n_heads)], axis=0, dtype=np.float32)
    roll = token_rollout(run, token)
    flow_row = _flow_row(ctx, token)
    rows = {f"Raw · layer {layer}, mean of heads": raw, "Rollout": roll, "Flow": flow_row}
    keys = top_keys(rows, PROFILE_KEYS)
    if len(keys) < n:
        st.caption(f"Showing the {len(keys)} input tokens with the largest value in any measure, in text order.")
    title = f"{result.model} · output token {token_label(result.tokens, token)}"
    st.plotly_chart(profile_figure(rows, result.tokens, title, keys=keys, highlight=token), key="flow_fig")
    stem = ctx.stem
    items = [Download("These values", "csv", f"{stem}_token{token}_raw_rollout_flow",
                      lambda: measures_csv(rows, labels))]
    if n <= ROLLOUT_MAX_TOKENS:
        items.append(Download("Rollout, all tokens", "npy", f"{stem}_rollout", lambda: text_rollout(run.key, run),
                              help="[query, key] float32, rows sum to 1."))
    full = FLOWS.get(run.key)
    if full is not None:
        items.append(Download("Flow, all tokens", "npy", f"{stem}_flow", lambda: full,
                              help="[query, key] float32, rows sum to 1."))
    download_strip(items, key="dl_text_flow")
