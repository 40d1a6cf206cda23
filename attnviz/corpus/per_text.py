"""One text's head statistics and the token positions that made them (numpy only).

Every statistic of :data:`attnviz.analysis.stats.STATS` is a mean over query rows of a sum over keys,
``value = mean_q Σ_k term[q, k]``, with these terms (``w`` one head's ``[query, key]`` weights):

- ``entropy``: ``-w ln w``; ``distance``: ``w · |q − k|``;
- ``cls``, ``sep``, ``punct``: ``w`` on the keys of that kind (:func:`attnviz.analysis.stats.token_masks`);
- ``self``, ``prev``, ``next``, ``sink``: ``w`` at ``k = q``, ``q − 1``, ``q + 1``, ``0``.

The *positions that made the value* are the ``(query, key)`` cells with the largest terms, at most ``n`` of them,
largest first; cells whose term is 0 are never named. The values themselves come from
:func:`attnviz.analysis.head_stats`, so they are the Python API's numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnviz.analysis.stats import STATS, head_stats, token_masks

STAT_NAMES: tuple[str, ...] = tuple(STATS)
"""Statistics in the order of the ``stat`` axis."""
_CHUNK = 2**22
"""Attention cells (over heads) turned into float64 terms at once."""


@dataclass(frozen=True)
class TextStats:
    """Statistics of every head on one text.

    Attributes:
        values: float64 ``[layer, head, stat]``, stats in the order of :data:`STAT_NAMES`.
        positions: int32 ``[layer, head, stat, position, 2]``: ``(query, key)`` cells with the largest terms,
            largest first; ``-1`` where there are fewer cells with a positive term.
        n_tokens: tokens of the text as the model read it.
        truncated: the text was cut to the model's limit.
    """

    values: np.ndarray
    positions: np.ndarray
    n_tokens: int
    truncated: bool


def text_stats(weights: np.ndarray, tokens: list[str], special: np.ndarray | None, n_positions: int,
               truncated: bool = False) -> TextStats:
    """Statistics and their top cells for one text.

    Args:
        weights: ``[layer, head, query, key]`` self-attention, rows summing to 1.
        tokens: one label per position.
        special: bool ``[query]`` of special tokens, or None.
        n_positions: cells to name per head and statistic.
        truncated: recorded as is.
    Returns:
        :class:`TextStats`.
    """
    stats = head_stats(weights, tokens, special)
    values = np.stack([stats.get(s) for s in STAT_NAMES], axis=-1)  # [layer, head, stat]
    masks = token_masks(tokens, special)
    n_layers, n_heads = values.shape[:2]
    flat = np.asarray(weights).reshape(n_layers * n_heads, *np.shape(weights)[2:])  # [layer·head, query, key]
    positions = np.empty((n_layers * n_heads, len(STAT_NAMES), n_positions, 2), dtype=np.int32)
    step = max(1, _CHUNK // max(1, flat.shape[-1] ** 2))  # heads at a time: bounds the float64 terms of long texts
    for lo in range(0, len(flat), step):
        w = flat[lo:lo + step].astype(np.float64)
        for s, name in enumerate(STAT_NAMES):
            positions[lo:lo + step, s] = _top_cells(w, name, masks, n_positions)
    positions = positions.reshape(n_layers, n_heads, len(STAT_NAMES), n_positions, 2)
    return TextStats(values=values, positions=positions, n_tokens=len(tokens), truncated=truncated)


def terms(w: np.ndarray, name: str, masks: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nonzero-able terms of statistic ``name`` for heads ``w`` ``[head, query, key]``.

    Returns:
        ``(term, query, key)``: float64 ``[head, cell]`` and the int ``[cell]`` query and key of each cell.
    """
    n = w.shape[-1]
    q, k = np.indices((n, n)).reshape(2, -1)
    if name == "entropy":
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(w > 0, -w * np.log(w), 0.0)
        return t.reshape(len(w), -1), q, k
    if name == "distance":
        return (w * np.abs(np.arange(n)[:, None] - np.arange(n)[None, :])).reshape(len(w), -1), q, k
    if name in masks:
        keys = np.flatnonzero(masks[name])
        qq, kk = np.indices((n, len(keys))).reshape(2, -1)
        return w[..., keys].reshape(len(w), -1), qq, keys[kk]
    offset = {"self": 0, "prev": -1, "next": 1}.get(name)
    if offset is not None:
        queries = np.arange(max(0, -offset), n - max(0, offset))
        return w[:, queries, queries + offset], queries, queries + offset
    if name == "sink":
        return w[:, :, 0], np.arange(n), np.zeros(n, dtype=int)
    raise ValueError(f"statistic must be one of {STAT_NAMES}, got {name!r}")


def _top_cells(w: np.ndarray, name: str, masks: dict[str, np.ndarray], n_positions: int) -> np.ndarray:
    """int32 ``[head, position, 2]``: the ``(query, key)`` of the largest positive terms, largest first; -1 after."""
    t, q, k = terms(w, name, masks)
    out = np.full((len(w), n_positions, 2), -1, dtype=np.int32)
    m = min(n_positions, t.shape[-1])
    if m == 0:
        return out
    top = np.argpartition(-t, m - 1, axis=-1)[:, :m]  # [head, m], unordered
    vals = np.take_along_axis(t, top, -1)
    order = np.lexsort((top, -vals), axis=-1)  # largest first, ties by cell
    top, vals = np.take_along_axis(top, order, -1), np.take_along_axis(vals, order, -1)
    keep = vals > 0
    out[:, :m, 0] = np.where(keep, q[top], -1)
    out[:, :m, 1] = np.where(keep, k[top], -1)
    return out
