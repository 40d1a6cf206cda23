"""Text view *Faithfulness*: for a causal model, deletion and insertion curves of the next token's probability for
every explanation method, measured when the person asks (:mod:`attnviz.web.faithfulness`)."""
from __future__ import annotations

import streamlit as st

from attnviz.web.faithfulness import EXPLAINED, measure_view
from attnviz.web.text.context import TextContext
from attnviz.web.widgets import download_strip

LABEL = "Faithfulness"
MAX_TOKENS = 128
"""Longest prompt measured on the page (each curve runs the model on up to 20 shortened prompts)."""


def show(ctx: TextContext) -> None:
    """The explanation, then the button or the measurement with its downloads."""
    result = ctx.result
    st.caption(EXPLAINED.format(units="prompt tokens before the last (the last one predicts)", unit="token",
                                removal="A token is removed by dropping it: a language model has no neutral token."))
    if not result.causal:
        st.info(f"{result.model} predicts nothing to explain: faithfulness is measured for a causal language model's "
                "next token (choose smollm2-135m), and for the image classifiers on the Image page.", icon="ℹ️")
        return
    n = result.n_tokens
    if n > MAX_TOKENS:
        st.info(f"This prompt has {n} tokens; the page measures prompts of up to {MAX_TOKENS} (each curve runs the "
                "model many times). Shorten it, or use bench/explain_eval.py.", icon="⏱️")
        return
    if n < 2:
        st.info("Faithfulness needs a prompt of at least two tokens: the last one predicts, the ones before it are "
                "removed.", icon="ℹ️")
        return
    items = measure_view(ctx.run, None, n - 1, "prompt tokens", f"{result.model} · next token", ctx.stem,
                         "text_faith_go")
    if items:
        download_strip(items, key="dl_text_faith")
