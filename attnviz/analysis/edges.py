"""Choosing which attention edges a token-to-token graph draws (numpy only).

A graph of every edge is unreadable past a few dozen tokens and slow to draw, so one of three rules keeps the
edges that matter, per head and per query row:

- ``threshold``: weights at or above ``value``;
- ``top_k``: the ``value`` largest weights of each row;
- ``mass``: the smallest set of largest weights of each row whose sum reaches ``value`` of the row's total.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RULES = ("threshold", "top_k", "mass")
DIRECTIONS = ("all", "A→B", "B→A", "A→A", "B→B")
"""Sentence-pair filters: queries of the first segment to keys of the second, and so on."""


@dataclass(frozen=True)
class EdgeRule:
    """Which edges to keep in each row.

    Attributes:
        kind: ``"threshold"``, ``"top_k"`` or ``"mass"``.
        value: the minimum weight, the number of edges per row, or the share of each row's mass in ``(0, 1]``.
    """

    kind: str = "top_k"
    value: float = 3

    def __post_init__(self) -> None:
        if self.kind not in RULES:
            raise ValueError(f"edge rule must be one of {RULES}, got {self.kind!r}")
        if self.kind == "top_k" and (self.value < 1 or int(self.value) != self.value):
            raise ValueError(f"top_k needs a whole number of edges per token (1 or more), got {self.value}")
        if self.kind == "mass" and not 0 < self.value <= 1:
            raise ValueError(f"the mass share must be in (0, 1], got {self.value}")
        if self.kind == "threshold" and not 0 <= self.value <= 1:
            raise ValueError(f"the threshold must be in [0, 1], got {self.value}")

    def describe(self, measure: str = "weight") -> str:
        """The rule in words (``measure``: what the values are, ``"weight"`` or ``"contribution"``)."""
        if self.kind == "top_k":
            return f"top {int(self.value)} per token"
        if self.kind == "mass":
            return f"{self.value:.0%} of each token's {'attention' if measure == 'weight' else measure + 's'}"
        return f"{measure}s ≥ {self.value:g}"


@dataclass(frozen=True)
class Edges:
    """Selected edges of a ``[head, query, key]`` stack, as parallel arrays (one entry per edge).

    Attributes:
        head, query, key: int32 ``[edge]`` positions.
        weight: float32 ``[edge]`` attention weight.
    """

    head: np.ndarray
    query: np.ndarray
    key: np.ndarray
    weight: np.ndarray

    def __len__(self) -> int:
        return int(self.weight.shape[0])

    def where(self, keep: np.ndarray) -> Edges:
        """The edges where the bool ``[edge]`` mask is True."""
        return Edges(self.head[keep], self.query[keep], self.key[keep], self.weight[keep])


def select_mask(matrices: np.ndarray, rule: EdgeRule) -> np.ndarray:
    """Which edges ``rule`` keeps.

    Args:
        matrices: ``[..., query, key]`` attention (e.g. ``[head, query, key]``).
    Returns:
        bool, same shape. Zero weights are never kept.
    Raises:
        ValueError: weights that are not finite (NaN would be dropped silently, inf kept as the strongest edge).
    """
    m = np.asarray(matrices, dtype=np.float32)
    if not np.isfinite(m).all():
        raise ValueError("weights are not finite (NaN or inf): the graph needs finite attention weights")
    positive = m > 0
    if rule.kind == "threshold":
        return positive & (m >= rule.value)
    n_keys = m.shape[-1]
    if rule.kind == "top_k":
        k = min(int(rule.value), n_keys)
        if k >= n_keys:
            return positive
        top = np.argpartition(-m, k - 1, axis=-1)[..., :k]  # [..., query, k]
        keep = np.zeros(m.shape, dtype=bool)
        np.put_along_axis(keep, top, True, axis=-1)
        return keep & positive
    # mass: sort each row descending; keep entries until the running sum reaches the share of the row total
    order = np.argsort(-m, axis=-1, kind="stable")  # [..., query, key]
    sorted_w = np.take_along_axis(m, order, axis=-1).astype(np.float64)
    before = np.cumsum(sorted_w, axis=-1) - sorted_w  # mass of the larger weights ahead of each entry
    need = rule.value * sorted_w.sum(axis=-1, keepdims=True) * (1 - 1e-9)
    keep_sorted = before < need
    keep = np.zeros(m.shape, dtype=bool)
    np.put_along_axis(keep, order, keep_sorted, axis=-1)
    return keep & positive


def select_edges(matrices: np.ndarray, rule: EdgeRule, allowed: np.ndarray | None = None) -> Edges:
    """Edges of a ``[head, query, key]`` stack kept by ``rule`` (applied to each head's rows).

    Args:
        matrices: ``[head, query, key]``.
        allowed: optional bool ``[query, key]``; edges outside it are dropped *after* the rule (so the pair
            filters show the same edges as the full graph, only fewer).
    Returns:
        :class:`Edges`, ordered by head, then query, then key.
    """
    m = np.asarray(matrices, dtype=np.float32)
    if m.ndim != 3:
        raise ValueError(f"expected [head, query, key], got shape {m.shape}")
    keep = select_mask(m, rule)
    if allowed is not None:
        allowed = np.asarray(allowed, dtype=bool)
        if allowed.shape != m.shape[1:]:
            raise ValueError(f"allowed mask {allowed.shape} does not match [query, key] {m.shape[1:]}")
        keep &= allowed
    h, q, k = np.nonzero(keep)
    return Edges(h.astype(np.int32), q.astype(np.int32), k.astype(np.int32), m[h, q, k])


def segment_mask(segments: np.ndarray, direction: str, special: np.ndarray | None = None) -> np.ndarray | None:
    """``[query, key]`` bool for a sentence-pair filter, or None for ``"all"``.

    Args:
        segments: int ``[query]``, 0 for the first text (A), 1 for the second (B).
        direction: one of :data:`DIRECTIONS`, e.g. ``"A→B"``: queries in A attending to keys in B.
        special: bool ``[query]``; special tokens ([CLS], [SEP]) belong to no segment when given.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if direction == "all":
        return None
    seg = np.asarray(segments)
    src, dst = (0 if c == "A" else 1 for c in (direction[0], direction[-1]))
    q_in, k_in = seg == src, seg == dst
    if special is not None:
        q_in, k_in = q_in & ~special, k_in & ~special
    return q_in[:, None] & k_in[None, :]
