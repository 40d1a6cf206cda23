"""What every view of the Text page gets (:class:`TextContext`), and the page's view options applied to a result."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from attnviz.analysis.view import ViewedAttention
from attnviz.render.figures import causal_mask
from attnviz.result import AttentionResult
from attnviz.web.runs import TextRun


@dataclass(frozen=True)
class TextContext:
    """One Text page run as the views see it.

    Attributes:
        run: names the run (model, text, second text); what download callables keep (``run.result()``).
        result: the run's result (local to this script run: never keep it).
        attention: the result's heads with the page's options applied (special tokens or the first token hidden,
            weights below the threshold set to 0), computed when a view asks (``head``, ``layer``, ``fused``,
            ``overview``); ``tokens`` label its query and key positions.
        layer, head: the focused head, chosen above the tabs.
        hide_special: whether special tokens are hidden (``attention`` and ``tokens`` are without them).
        hide_sink: whether the first token is hidden.
        colorscale: the page's colour scale.
        stem: the start of every file name of this run (``{model}_{digest[:10]}``).
        contributions: whether ``attention`` shows norm-based contributions instead of weights (its ``measure``
            names them in titles; file names of what a view shows then end in ``_contrib``).
    """

    run: TextRun
    result: AttentionResult
    attention: ViewedAttention
    tokens: list[str]
    layer: int
    head: int
    hide_special: bool
    hide_sink: bool
    colorscale: str
    stem: str
    contributions: bool = False

    @property
    def measure(self) -> str:
        """``"weight"`` or ``"contribution"``: what the views' matrices hold, for titles and colour bars."""
        return self.attention.measure

    @property
    def suffix(self) -> str:
        """End of the file names of what the views show: ``"_contrib"`` for contributions, else ``""``."""
        return "_contrib" if self.contributions else ""

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


def shown_positions(result: AttentionResult, hide_special: bool, hide_sink: bool = False) -> np.ndarray | None:
    """bool ``[query]``: the positions the page shows (None: all) with special tokens and/or the first token (the
    attention sink, Xiao et al. 2023) hidden."""
    keep = np.ones(result.n_tokens, dtype=bool)
    if hide_special:
        keep &= ~np.asarray(result.special, dtype=bool)
    if hide_sink:
        keep[0] = False
    return None if keep.all() else keep


def view_attention(result: AttentionResult, hide_special: bool, minimum: float,
                   hide_sink: bool = False, contributions: bool = False) -> ViewedAttention:
    """The result's heads with the page's view options: special tokens and/or the first token hidden (rows
    renormalised over the others), norm-based contributions instead of weights (``contributions``: each shown
    weight times its key's value norm) and values below ``minimum`` set to 0.

    Raises:
        ValueError: the options hide every token; contributions of a model without value norms.
    """
    return ViewedAttention(result, shown_positions(result, hide_special, hide_sink), minimum, contributions)


def view_tokens(result: AttentionResult, hide_special: bool, hide_sink: bool = False) -> list[str]:
    """Token labels matching :func:`view_attention`."""
    keep = shown_positions(result, hide_special, hide_sink)
    if keep is None or result.key_tokens is not None:
        return list(result.tokens)
    return [t for t, k in zip(result.tokens, keep, strict=True) if k]


def token_label(tokens: list[str], i: int) -> str:
    """How the views name token ``i``: ``"5: cat"``."""
    return f"{i}: {tokens[i]}"
