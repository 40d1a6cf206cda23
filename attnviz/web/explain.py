"""Explanations on the pages: gradient relevance (Chefer et al. 2021), the ALTI roll-up (Ferrando et al. 2022) and
the faithfulness curves of a run, each computed in a model run slot (:func:`attnviz.web.runs.limited`) and cached
process-wide by the run's key, so a session keeps only the run's name (:class:`TextRun`, :class:`ImageRun`). They
need the model's internals, so they run in this process even when the pages' runs go to a Ray cluster
(:func:`attnviz.web.runs.get_local_model`).

ALTI's cost grows with the square of the length (:func:`attnviz.models.alti.estimate_seconds`): it is computed at
once up to :data:`ALTI_AUTO_S`, after a click above (the click holds for the rest of that input), and refused beyond
what :mod:`attnviz.models.alti` allows.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable

import numpy as np
import streamlit as st

from attnviz.cache import BoundedCache
from attnviz.models import alti as alti_mod
from attnviz.models.faithful import Faithfulness, faithfulness
from attnviz.models.relevance import Relevance
from attnviz.web.flow import duration
from attnviz.web.runs import RESULT_TTL_S, IdsRun, ImageRun, TextRun, get_local_model, limited

ALTI_AUTO_S = 0.5
"""ALTI is computed without asking up to this estimate (a quiet machine; :func:`attnviz.models.alti.estimate_seconds`):
the tiny ViTs, MiniLM up to about 200 tokens, SmolLM2 up to about 60; DINOv2 (about 0.6 s) and longer texts after a
click."""

RELEVANCES: BoundedCache[Relevance] = BoundedCache(16 * 2**20, RESULT_TTL_S, lambda r: r.scores.nbytes + 4096)
"""Relevance by (run key, position or target): a few KB each."""
ALTIS: BoundedCache[np.ndarray] = BoundedCache(64 * 2**20, RESULT_TTL_S, lambda m: m.nbytes)
"""ALTI roll-ups ``[query, key]`` by run key: 1 MB at 512 tokens."""
FAITHFULNESS: BoundedCache[Faithfulness] = BoundedCache(
    16 * 2**20, RESULT_TTL_S, lambda f: sum(c.probabilities.nbytes * 2 for c in f.curves) + 4096)
"""Faithfulness curves by (run key, target): a few KB each."""


def text_ids(run: TextRun) -> list[int]:
    """The token ids of a text run, as the model's ``run`` tokenized them (cut to its limit)."""
    enc, _, _ = get_local_model(run.model).encode(run.text, run.pair)
    return enc["input_ids"][0].tolist()


def next_token_relevance(run: TextRun, position: int) -> Relevance:
    """Gradient relevance of tokens ``0 .. position`` of a causal model's run for the token it predicts after
    ``position`` (its most probable next token). ``ValueError`` when the prefix is too long or the model not
    causal."""
    def compute() -> Relevance:
        ids = text_ids(run)[:position + 1]
        return limited(get_local_model(run.model).relevance, ids=ids)

    return RELEVANCES.get_or_compute((run.key, "position", int(position)), compute)


def generated_relevance(run: IdsRun, position: int) -> Relevance:
    """Gradient relevance of ``ids[:position]`` of a prompt and its continuation for the token at ``position``
    (the one the model generated there)."""
    def compute() -> Relevance:
        ids = list(run.ids)
        return limited(get_local_model(run.model).relevance, ids=ids[:position], target=ids[position])

    return RELEVANCES.get_or_compute((run.key, "generated", int(position)), compute)


def image_relevance(run: ImageRun, target: int | None) -> Relevance:
    """Gradient relevance of the patches of an image run for class ``target`` (None: the predicted class)."""
    def compute() -> Relevance:
        return limited(get_local_model(run.model).relevance, image=run.data, target=target)

    return RELEVANCES.get_or_compute((run.key, "target", target), compute)


def alti_unsupported(model_name: str) -> str | None:
    """Why ALTI is not available for a model (its family), or None when it is."""
    try:
        alti_mod.family(get_local_model(model_name))
    except ValueError as e:
        return str(e)
    return None


def _alti_inputs(run: TextRun | ImageRun) -> dict[str, object]:
    if isinstance(run, ImageRun):
        return {"image": run.data}
    return {"text": run.text, "text_pair": run.pair}


def alti_rollup_view(run: TextRun | ImageRun, n_tokens: int, button_key: str) -> np.ndarray | None:
    """The ALTI roll-up ``[query, key]`` of a run, with a progress bar; None while it waits for a click, or when it
    is not available (the page then says why, in a caption).

    Args:
        n_tokens: the run's positions (for the time estimate).
        button_key: widget key of the "compute" button (unique on the page).
    """
    cached = ALTIS.get(run.key)
    if cached is not None:
        return cached
    why = alti_unsupported(run.model)
    if why is not None:
        st.caption(f"ALTI roll-up: not available. {why}")
        return None
    model = get_local_model(run.model)
    seconds = alti_mod.estimate_seconds(model, n_tokens)
    if alti_mod.work(model, n_tokens) > alti_mod.MAX_WORK:
        st.caption(f"ALTI roll-up: not computed, {n_tokens} tokens would take too long on this server (its cost grows "
                   "with the square of the length).")
        return None
    slot = st.empty()
    confirmed = f"{button_key}_ok"
    if seconds > ALTI_AUTO_S and st.session_state.get(confirmed) != run.key:
        if not slot.button(f"Compute the ALTI roll-up ({duration(seconds)})", key=button_key,
                           help="ALTI decomposes every layer's attention block into one vector per input token; its "
                                "cost grows with the square of the length."):
            return None
        st.session_state[confirmed] = run.key

    def report(done: int, total: int) -> None:
        slot.progress(done / total, text=f"ALTI: layer {done} of {total}")

    def compute() -> np.ndarray:
        return limited(alti_mod.alti, model, progress=report, **_alti_inputs(run)).rollup

    try:
        rollup = ALTIS.get_or_compute(run.key, compute)
    except ValueError as e:
        slot.empty()
        st.caption(f"ALTI roll-up: not computed. {e}")
        return None
    slot.empty()
    return rollup


def faithfulness_key(run: TextRun | ImageRun, target: int | None, max_steps: int) -> Hashable:
    """The key of a measurement in :data:`FAITHFULNESS`."""
    return (run.key, target, int(max_steps))


def faithfulness_of(run: TextRun | ImageRun, target: int | None, max_steps: int,
                    progress: Callable[[int, int], None] | None = None) -> Faithfulness:
    """Deletion and insertion curves of every method for a run and ``target`` (None: the prediction), at most
    ``max_steps`` steps per curve, cached."""
    def compute() -> Faithfulness:
        model = get_local_model(run.model)
        inputs = {"image": run.data} if isinstance(run, ImageRun) else {"text": run.text}
        return limited(faithfulness, model, target=target, max_steps=max_steps, progress=progress, **inputs)

    return FAITHFULNESS.get_or_compute(faithfulness_key(run, target, max_steps), compute)
