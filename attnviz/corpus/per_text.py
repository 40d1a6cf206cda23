"""Head statistics of texts and the token positions that made them, for many texts of one length at once (numpy
only).

Every statistic of :data:`attnviz.analysis.stats.STATS` is a mean over query rows of a sum over keys,
``value = mean_q Σ_k term[q, k]``, with these terms (``w`` one head's ``[query, key]`` weights):

- ``entropy``: ``-w ln w``; ``distance``: ``w · |q − k|``;
- ``cls``, ``sep``, ``punct``: ``w`` on the keys of that kind (:func:`attnviz.analysis.stats.token_masks`);
- ``self``, ``prev``, ``next``, ``sink``: ``w`` at ``k = q``, ``q − 1``, ``q + 1``, ``0``.

:func:`values_of` computes them for a whole group of texts of the same token count in one pass of array operations
(float64, as :func:`attnviz.analysis.head_stats` does, which they equal to float rounding). The *positions that made
a value* are the ``(query, key)`` cells with the largest terms, at most ``n`` of them, largest first, ties to the
smaller cell (``query · n + key``); cells whose term is 0 are never named. :func:`top_cells` finds them for any
chosen set of ``[layer, head]`` rows, so a caller names positions only where it keeps them (the corpus summary:
only its top texts).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnviz.analysis.stats import STATS, token_masks

STAT_NAMES: tuple[str, ...] = tuple(STATS)
"""Statistics in the order of the ``stat`` axis."""
KEY_KINDS = ("cls", "sep", "punct")
"""Statistics that are the share of a row on keys of a kind (a bool ``[key]`` mask per text)."""
_DIAGONALS = {"self": 0, "prev": -1, "next": 1}
"""Statistics on one diagonal: key = query + offset."""


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


def key_masks(tokens: list[str], special: np.ndarray | None) -> np.ndarray:
    """bool ``[kind, key]`` of one text, kinds in :data:`KEY_KINDS` order
    (:func:`attnviz.analysis.stats.token_masks`)."""
    masks = token_masks(tokens, special)
    return np.stack([masks[kind] for kind in KEY_KINDS])


def values_of(weights: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Every statistic of every head of texts of one token count.

    Args:
        weights: float32 or float64 ``[layer, text, head, query, key]`` self-attention, rows summing to 1.
        masks: bool ``[text, kind, key]`` (:func:`key_masks` of each text).
    Returns:
        float64 ``[text, layer, head, stat]``, stats in :data:`STAT_NAMES` order.
    """
    n = weights.shape[-1]
    w = np.asarray(weights, dtype=np.float64)
    if not np.isfinite(w).all():
        raise ValueError("weights are not finite (NaN or inf): head statistics need finite attention weights")
    sums = {}
    log_w = np.zeros_like(w)
    np.log(w, out=log_w, where=w > 0)
    log_w *= w
    sums["entropy"] = -log_w.sum((-1, -2))
    del log_w
    distance = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :]).astype(np.float64)
    sums["distance"] = (w * distance).sum((-1, -2))
    columns = w.sum(-2)  # [layer, text, head, key]: each key's weight summed over the rows
    for kind, mask in zip(KEY_KINDS, np.moveaxis(masks, 1, 0), strict=True):  # mask [text, key]
        sums[kind] = (columns * mask[None, :, None, :]).sum(-1)
    for name, offset in _DIAGONALS.items():
        sums[name] = np.diagonal(w, offset=offset, axis1=-2, axis2=-1).sum(-1)
    sums["sink"] = columns[..., 0]
    rows = {name: n - 1 if name in ("prev", "next") else n for name in STAT_NAMES}
    zeros = np.zeros(w.shape[:3])
    out = np.stack([sums[name] / rows[name] if rows[name] > 0 else zeros for name in STAT_NAMES], -1)
    return np.moveaxis(out, 1, 0)  # [text, layer, head, stat]


def grid_terms(w: np.ndarray, name: str, masks: np.ndarray | None = None) -> np.ndarray:
    """float64 ``[row, query · key]``: the terms of statistic ``name`` over every cell of heads ``w``
    ``[row, query, key]``, 0 in the cells the statistic does not read.

    Args:
        masks: bool ``[row, kind, key]`` (:func:`key_masks` of each row's text), for ``cls``, ``sep``, ``punct``.
    """
    w = np.asarray(w, dtype=np.float64)
    n = w.shape[-1]
    if name == "entropy":
        t = np.zeros_like(w)
        np.log(w, out=t, where=w > 0)
        t *= -w
    elif name == "distance":
        t = w * np.abs(np.arange(n)[:, None] - np.arange(n)[None, :])
    elif name in KEY_KINDS:
        t = w * masks[:, KEY_KINDS.index(name), None, :]
    elif name in _DIAGONALS:
        t = w * np.eye(n, k=_DIAGONALS[name])
    elif name == "sink":
        t = w * (np.arange(n) == 0)
    else:
        raise ValueError(f"statistic must be one of {STAT_NAMES}, got {name!r}")
    return t.reshape(len(w), n * n)


def top_cells(w: np.ndarray, name: str, n_positions: int, masks: np.ndarray | None = None) -> np.ndarray:
    """int32 ``[row, position, 2]``: the ``(query, key)`` cells of the largest positive terms of statistic
    ``name`` in each head of ``w`` ``[row, query, key]``, largest first, ties to the smaller cell; -1 after.

    Args:
        masks: as :func:`grid_terms`.
    """
    t = grid_terms(w, name, masks)
    n = np.shape(w)[-1]
    out = np.full((len(t), n_positions, 2), -1, dtype=np.int32)
    m = min(n_positions, t.shape[-1])
    if m == 0 or not len(t):
        return out
    top = np.argpartition(-t, m - 1, axis=-1)[:, :m]  # [row, m], unordered
    vals = np.take_along_axis(t, top, -1)
    order = np.lexsort((top, -vals), axis=-1)  # largest first, ties by cell
    top, vals = np.take_along_axis(top, order, -1), np.take_along_axis(vals, order, -1)
    # a tie at the m-th value may have been cut at any of its cells: such rows are sorted in full
    last = vals[:, -1:]
    cut = (last[:, 0] > 0) & ((t == last).sum(-1) > (vals == last).sum(-1))
    for r in np.flatnonzero(cut):
        top[r] = np.argsort(-t[r], kind="stable")[:m]
        vals[r] = t[r, top[r]]
    keep = vals > 0
    out[:, :m, 0] = np.where(keep, top // n, -1)
    out[:, :m, 1] = np.where(keep, top % n, -1)
    return out


def text_stats(weights: np.ndarray, tokens: list[str], special: np.ndarray | None, n_positions: int,
               truncated: bool = False) -> TextStats:
    """Statistics and their top cells for one text (every head and statistic).

    Args:
        weights: ``[layer, head, query, key]`` self-attention, rows summing to 1.
        tokens: one label per position.
        special: bool ``[query]`` of special tokens, or None.
        n_positions: cells to name per head and statistic.
        truncated: recorded as is.
    Returns:
        :class:`TextStats`.
    """
    w = np.asarray(weights)
    if len(tokens) != w.shape[-1]:
        raise ValueError(f"{len(tokens)} tokens for {w.shape[-1]} positions")
    masks = key_masks(tokens, special)[None]
    values = values_of(w[:, None], masks)[0]
    return TextStats(values=values, positions=all_positions(w, masks[0], n_positions), n_tokens=len(tokens),
                     truncated=truncated)


def all_positions(weights: np.ndarray, masks: np.ndarray, n_positions: int) -> np.ndarray:
    """int32 ``[layer, head, stat, position, 2]``: :func:`top_cells` of every head and statistic of one text
    (``weights`` ``[layer, head, query, key]``, ``masks`` bool ``[kind, key]``)."""
    n_layers, n_heads, n, _ = np.shape(weights)
    flat = np.asarray(weights).reshape(n_layers * n_heads, n, n)
    rows = np.broadcast_to(masks, (len(flat), *masks.shape))
    out = np.stack([top_cells(flat, name, n_positions, rows) for name in STAT_NAMES], 1)
    return out.reshape(n_layers, n_heads, len(STAT_NAMES), n_positions, 2)


def terms(w: np.ndarray, name: str, masks: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The terms of statistic ``name`` for heads ``w`` ``[head, query, key]`` over the cells it reads.

    Returns:
        ``(term, query, key)``: float64 ``[head, cell]`` and the int ``[cell]`` query and key of each cell.
    """
    n = w.shape[-1]
    if name in KEY_KINDS:
        keys = np.flatnonzero(masks[name])
        qq, kk = np.indices((n, len(keys))).reshape(2, -1)
        return np.asarray(w, dtype=np.float64)[..., keys].reshape(len(w), -1), qq, keys[kk]
    if name in _DIAGONALS:
        offset = _DIAGONALS[name]
        queries = np.arange(max(0, -offset), n - max(0, offset))
        return np.asarray(w, dtype=np.float64)[:, queries, queries + offset], queries, queries + offset
    if name == "sink":
        return np.asarray(w, dtype=np.float64)[:, :, 0], np.arange(n), np.zeros(n, dtype=int)
    q, k = np.indices((n, n)).reshape(2, -1)
    return grid_terms(w, name), q, k
