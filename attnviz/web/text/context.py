"""What every view of the Text page gets (:class:`TextContext`), and the page's view options applied to a result."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from attnviz.analysis import keep_tokens, threshold
from attnviz.render.figures import causal_mask
from attnviz.result import AttentionResult
from attnviz.web.runs import TextRun


@dataclass(frozen=True)
class TextContext:
    """One Text page run as the views see it.

    Attributes:
        run: names the run (model, text, second text); what download callables keep (``run.result()``).
        result: the run's result (local to this script run: never keep it).
        weights: ``[layer, head, query, key]`` with the page's options applied (special tokens hidden, weights
            below the threshold set to 0); ``tokens`` label its query and key positions.
        layer, head: the focused head, chosen above the tabs.
        hide_special: whether special tokens are hidden (``weights`` and ``tokens`` are without them).
        colorscale: the page's colour scale.
        stem: the start of every file name of this run (``{model}_{digest[:10]}``).
    """

    run: TextRun
    result: AttentionResult
    weights: np.ndarray
    tokens: list[str]
    layer: int
    head: int
    hide_special: bool
    colorscale: str
    stem: str

    @property
    def masked(self) -> np.ndarray | None:
        """bool ``[query, key]``: the keys a causal model cannot see (drawn grey, not as weight 0); None for
        encoders."""
        r = self.result
        return causal_mask(len(self.tokens)) if r.causal and r.key_tokens is None else None


class TextView(Protocol):
    """A view of the Text page: a module with a tab label and a ``show`` (see :mod:`attnviz.web.text`)."""

    LABEL: str

    def show(self, ctx: TextContext) -> None: ...


def view_weights(result: AttentionResult, hide_special: bool, minimum: float) -> np.ndarray:
    """``[layer, head, query, key]`` with the page's view options: special tokens hidden (rows renormalised) and
    weights below ``minimum`` set to 0."""
    w = result.weights
    if hide_special and result.key_tokens is None:
        w = keep_tokens(w, ~result.special)
    return threshold(w, minimum)


def view_tokens(result: AttentionResult, hide_special: bool) -> list[str]:
    """Token labels matching :func:`view_weights`."""
    if hide_special and result.key_tokens is None:
        return [t for t, s in zip(result.tokens, result.special, strict=True) if not s]
    return list(result.tokens)


def token_label(tokens: list[str], i: int) -> str:
    """How the views name token ``i``: ``"5: cat"``."""
    return f"{i}: {tokens[i]}"
