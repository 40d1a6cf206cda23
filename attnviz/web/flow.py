"""Attention flow of one output token on the pages (the *Across layers* views of Text and Image): whether it is
practical, a progress bar while it runs, and a process-wide cache of the rows computed (shared by all sessions,
bounded by bytes).

One token's flow costs one max-flow per input token, about ``layers * tokens**3`` in all
(:func:`attnviz.analysis.flow.estimate_seconds`): it is computed at once when quick, after a click when it takes
seconds (the click holds for the rest of that input), and refused when it would take longer.
"""
from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import streamlit as st

from attnviz.analysis.aggregate import Attention, attention_shape
from attnviz.analysis.flow import estimate_seconds, flow_row
from attnviz.cache import BoundedCache
from attnviz.result import AttentionResult

ROW_AUTO_S = 1.0
"""One token's flow is computed without asking up to this estimate; above, after a click."""
ROW_MAX_S = 10.0
"""Above this estimate for one token, flow is refused (rollout is still shown)."""

ROWS: BoundedCache[np.ndarray] = BoundedCache(16 * 2**20, 1800, lambda row: row.nbytes)
"""Flow rows ``[key]`` by (input, output position): 16 MB holds thousands of 512-token rows."""


def row_seconds(weights: Attention) -> float:
    """Estimated seconds for one output token's flow of ``[layer, head, query, key]`` weights (or a result)."""
    shape = attention_shape(weights)
    return estimate_seconds(shape[0], shape[-1], 1)


def duration(seconds: float) -> str:
    """An estimate for people: "under a second", "about 7 s", "about 3 min"."""
    if seconds < 1:
        return "under a second"
    return f"about {seconds:.0f} s" if seconds < 90 else f"about {seconds / 60:.0f} min"


def flow_row_view(input_key: Hashable, weights: Attention, query: int, label: str,
                  button_key: str) -> np.ndarray | None:
    """Attention flow of output ``query`` with a progress bar, or None when it is not practical or waits for a
    click (the page then says why, or shows the button).

    Args:
        input_key: names the input (e.g. model name and input digest): the cache key, and what a click confirms.
        weights: ``[layer, head, query, key]`` self-attention of that input, or its result (whose full weights
            are built only for a flow that is practical, far under their bound).
        query: the output position.
        label: the output token as the page calls it, e.g. ``"token 5: cat"`` or ``"patch (3, 4)"``.
        button_key: widget key of the "compute" button (unique on the page).
    Returns:
        ``[key]`` float32 summing to 1, or None.
    """
    n_layers, n = attention_shape(weights)[0], attention_shape(weights)[-1]
    seconds = row_seconds(weights)
    if seconds > ROW_MAX_S:
        st.info(f"Attention flow is not practical here: {n} tokens through {n_layers} layers is one max-flow per "
                f"input token, {duration(seconds)} even for one token on this server. Rollout is shown; a "
                "shorter input (or a smaller model) makes flow possible.", icon="⏱️")
        return None
    key = (input_key, int(query))
    cached = ROWS.get(key)
    if cached is not None:
        return cached
    slot = st.empty()  # the button, then the progress bar while the row is computed
    confirmed = f"{button_key}_ok"
    if seconds > ROW_AUTO_S and st.session_state.get(confirmed) != input_key:
        if not slot.button(f"Compute flow for this token ({duration(seconds)})", key=button_key,
                           help="Flow is costly: one max-flow per input token. After this click, every token you "
                                "choose on this input gets its flow, each with a progress bar."):
            return None
        st.session_state[confirmed] = input_key

    def report(done: int, total: int) -> None:
        if done == total or done % max(1, total // 50) == 0:
            slot.progress(done / total, text=f"Attention flow of {label}: {done} of {total} input tokens")

    def compute() -> np.ndarray:
        full = weights.weights if isinstance(weights, AttentionResult) else weights
        return flow_row(full, int(query), progress=report)

    row = ROWS.get_or_compute(key, compute)
    slot.empty()
    return row
