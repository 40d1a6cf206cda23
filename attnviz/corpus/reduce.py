"""The per-head summary of many texts: exact, mergeable and the same whatever the order of arrival (numpy only).

A :class:`Summary` holds, per ``[layer, head, stat]``, the count, the float64 sum and sum of squares, the extremes,
a histogram over fixed bins (:data:`BINS`) and the top-k texts with their token positions. Two summaries of
disjoint texts merge into the summary of their union (:func:`merge`): counts, extremes and histograms exactly; the
top-k exactly (ties go to the smaller text id); sums in float64. The pipeline merges batches and parts in a fixed
order (batch id, then shard start), so a rerun, a resumed run or a run that lost a worker gives the same bits.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields

import numpy as np

from attnviz.corpus.per_text import STAT_NAMES, TextStats

_SHARE = np.linspace(0.0, 1.0, 21)
BINS: dict[str, np.ndarray] = {
    "entropy": np.linspace(0.0, 10.0, 41),  # nats; ln(8192) = 9.01
    "distance": np.array([0, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256,
                          384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192], dtype=np.float64),  # tokens
    **{name: _SHARE for name in STAT_NAMES if name not in ("entropy", "distance")},
}
"""Bin edges per statistic. Bin ``i`` holds ``edges[i] <= v < edges[i + 1]``; the last bin also holds everything
at or above its lower edge (a share of 1.0000001 from float error, a distance past 8192)."""


def bin_index(name: str, values: np.ndarray) -> np.ndarray:
    """int ``[...]``: the bin of statistic ``name`` each value falls in (see :data:`BINS`)."""
    edges = BINS[name]
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)


@dataclass
class Summary:
    """Per-head summary of a set of texts. Arrays are ``[layer, head, stat, ...]``, stats in
    :data:`~attnviz.corpus.per_text.STAT_NAMES` order.

    Attributes:
        count: texts summarised (every statistic has one value per text).
        tokens: tokens over all texts.
        truncated: texts cut to the model's limit.
        skipped: ids of texts the model refused (no token it can read), ascending.
        sum, sumsq, min, max: float64 ``[layer, head, stat]``.
        hist: per statistic, int64 ``[layer, head, bin]`` over :data:`BINS`.
        top_value: float64 ``[layer, head, stat, k]``, largest first, ``-inf`` in empty slots.
        top_id: int64 ``[layer, head, stat, k]``, ``-1`` in empty slots.
        top_pos: int32 ``[layer, head, stat, k, position, 2]`` (query, key) cells, ``-1`` where none.
    """

    count: int
    tokens: int
    truncated: int
    skipped: list[int]
    sum: np.ndarray
    sumsq: np.ndarray
    min: np.ndarray
    max: np.ndarray
    hist: dict[str, np.ndarray]
    top_value: np.ndarray
    top_id: np.ndarray
    top_pos: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """``(layers, heads)``."""
        return self.sum.shape[:2]  # type: ignore[return-value]

    @property
    def top_k(self) -> int:
        return int(self.top_id.shape[-1])

    def mean(self) -> np.ndarray:
        """float64 ``[layer, head, stat]`` (NaN with no texts)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sum / self.count

    def std(self) -> np.ndarray:
        """float64 ``[layer, head, stat]``: population standard deviation (NaN with no texts)."""
        mean = self.mean()
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt(np.maximum(self.sumsq / self.count - mean * mean, 0.0))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat numpy arrays (for a Ray Data row); :meth:`from_arrays` inverts it."""
        out = {f.name: np.asarray(getattr(self, f.name)) for f in fields(self) if f.name not in ("hist", "skipped")}
        out["skipped"] = np.asarray(self.skipped, dtype=np.int64)
        out.update({f"hist_{name}": h for name, h in self.hist.items()})
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Summary:
        hist = {name: np.asarray(arrays[f"hist_{name}"], dtype=np.int64) for name in STAT_NAMES}
        return cls(
            count=int(arrays["count"]), tokens=int(arrays["tokens"]), truncated=int(arrays["truncated"]),
            skipped=[int(i) for i in np.asarray(arrays["skipped"]).ravel()],
            sum=np.asarray(arrays["sum"], np.float64), sumsq=np.asarray(arrays["sumsq"], np.float64),
            min=np.asarray(arrays["min"], np.float64), max=np.asarray(arrays["max"], np.float64), hist=hist,
            top_value=np.asarray(arrays["top_value"], np.float64), top_id=np.asarray(arrays["top_id"], np.int64),
            top_pos=np.asarray(arrays["top_pos"], np.int32),
        )


def empty(n_layers: int, n_heads: int, top_k: int, n_positions: int) -> Summary:
    """The summary of no texts (the identity of :func:`merge`)."""
    shape = (n_layers, n_heads, len(STAT_NAMES))
    return Summary(
        count=0, tokens=0, truncated=0, skipped=[],
        sum=np.zeros(shape), sumsq=np.zeros(shape), min=np.full(shape, np.inf), max=np.full(shape, -np.inf),
        hist={name: np.zeros((n_layers, n_heads, len(BINS[name]) - 1), dtype=np.int64) for name in STAT_NAMES},
        top_value=np.full((*shape, top_k), -np.inf), top_id=np.full((*shape, top_k), -1, dtype=np.int64),
        top_pos=np.full((*shape, top_k, n_positions, 2), -1, dtype=np.int32),
    )


def summarise(ids: Sequence[int], texts: Sequence[TextStats | None], n_layers: int, n_heads: int, top_k: int,
              n_positions: int) -> Summary:
    """The summary of one batch.

    Args:
        ids: the texts' ids, one per entry of ``texts``.
        texts: each text's statistics, or None for a text the model refused (it counts as skipped).
        n_layers, n_heads: the model's shape (for a batch where every text was refused).
        top_k: texts kept per head and statistic.
        n_positions: ``(query, key)`` cells per text (as in ``texts``).
    Returns:
        :class:`Summary` of the batch's readable texts, summed in the order given.
    """
    kept = [(int(i), t) for i, t in zip(ids, texts, strict=True) if t is not None]
    skipped = [int(i) for i, t in zip(ids, texts, strict=True) if t is None]
    if not kept:
        return summarise_values(np.zeros(0, np.int64), np.zeros((0, n_layers, n_heads, len(STAT_NAMES))), 0, 0,
                                skipped, top_k, n_positions, lambda *_: None)
    pos = np.stack([t.positions for _, t in kept])  # [text, layer, head, stat, position, 2]

    def positions(text: np.ndarray, layer: np.ndarray, head: np.ndarray, stat: np.ndarray) -> np.ndarray:
        return pos[text, layer, head, stat]

    return summarise_values(np.array([i for i, _ in kept], dtype=np.int64), np.stack([t.values for _, t in kept]),
                            sum(t.n_tokens for _, t in kept), sum(bool(t.truncated) for _, t in kept), skipped,
                            top_k, n_positions, positions)


Positions = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""``positions(text, layer, head, stat)`` (int ``[entry]`` each, ``text`` an index into the batch): int32
``[entry, position, 2]``, the cells that made each of those values (:func:`attnviz.corpus.per_text.top_cells`)."""


def summarise_values(ids: np.ndarray, values: np.ndarray, tokens: int, truncated: int, skipped: Sequence[int],
                     top_k: int, n_positions: int, positions: Positions) -> Summary:
    """The summary of one batch from its readable texts' values; positions are asked for only of the entries the
    summary keeps (its top ``top_k`` texts of each head and statistic).

    Args:
        ids: int ``[text]``, the readable texts' ids.
        values: float64 ``[text, layer, head, stat]``.
        tokens, truncated: over the readable texts.
        skipped: ids of the texts the model refused.
        positions: see :data:`Positions`.
    Returns:
        :class:`Summary`, summed in the order of ``values``.
    """
    n_layers, n_heads = values.shape[1:3]
    out = empty(n_layers, n_heads, top_k, n_positions)
    out.skipped = sorted(int(i) for i in skipped)
    if not len(values):
        return out
    v = values
    out.count, out.tokens, out.truncated = len(v), int(tokens), int(truncated)
    out.sum, out.sumsq, out.min, out.max = v.sum(0), (v * v).sum(0), v.min(0), v.max(0)
    for s, name in enumerate(STAT_NAMES):
        nb = len(BINS[name]) - 1
        flat = (np.arange(n_layers * n_heads).reshape(n_layers, n_heads) * nb)[None] + bin_index(name, v[..., s])
        out.hist[name] = np.bincount(flat.ravel(), minlength=n_layers * n_heads * nb).reshape(n_layers, n_heads, nb)
    value = np.moveaxis(v, 0, -1)  # [layer, head, stat, text]
    ident = np.broadcast_to(np.asarray(ids, dtype=np.int64), value.shape)
    order = _top_order(value, ident, top_k)  # [layer, head, stat, k]: indices into the batch
    k = order.shape[-1]
    out.top_value = np.full((*value.shape[:3], top_k), -np.inf)
    out.top_id = np.full((*value.shape[:3], top_k), -1, dtype=np.int64)
    out.top_value[..., :k] = np.take_along_axis(value, order, -1)
    out.top_id[..., :k] = np.take_along_axis(ident, order, -1)
    layer, head, stat, rank = np.indices(order.shape).reshape(4, -1)
    out.top_pos[layer, head, stat, rank] = positions(order.ravel(), layer, head, stat)
    return out


def merge(parts: Iterable[Summary]) -> Summary:
    """The summary of the union of disjoint parts, merged in the order given.

    Raises:
        ValueError: no parts, or parts of different shapes (another model, top-k or number of positions).
    """
    parts = list(parts)
    if not parts:
        raise ValueError("nothing to merge")
    first = parts[0]
    for p in parts[1:]:
        if p.top_pos.shape != first.top_pos.shape:
            raise ValueError(f"parts of different shapes: {p.top_pos.shape} vs {first.top_pos.shape}")
    out = Summary(
        count=sum(p.count for p in parts), tokens=sum(p.tokens for p in parts),
        truncated=sum(p.truncated for p in parts), skipped=sorted(i for p in parts for i in p.skipped),
        sum=_ordered_sum(p.sum for p in parts), sumsq=_ordered_sum(p.sumsq for p in parts),
        min=np.minimum.reduce([p.min for p in parts]), max=np.maximum.reduce([p.max for p in parts]),
        hist={name: sum((p.hist[name] for p in parts[1:]), parts[0].hist[name].copy()) for name in STAT_NAMES},
        top_value=first.top_value, top_id=first.top_id, top_pos=first.top_pos,
    )
    value = np.concatenate([p.top_value for p in parts], -1)
    ident = np.concatenate([p.top_id for p in parts], -1)
    pos = np.concatenate([p.top_pos for p in parts], 3)
    return _keep_top(out, value, ident, pos, first.top_k)


def _ordered_sum(arrays: Iterable[np.ndarray]) -> np.ndarray:
    """Left-to-right float64 sum (so the result depends only on the order given)."""
    it = iter(arrays)
    total = np.array(next(it), dtype=np.float64, copy=True)
    for a in it:
        total += a
    return total


def _top_order(value: np.ndarray, ident: np.ndarray, top_k: int) -> np.ndarray:
    """int ``[layer, head, stat, k]``: the candidates (last axis of ``value``/``ident``) of the ``top_k`` largest
    values, largest first, ties to the smaller id, empty slots (id -1) last; ``k = min(top_k, candidates)``."""
    empty_slot = ident < 0
    order = np.lexsort((np.where(empty_slot, np.iinfo(np.int64).max, ident), -value, empty_slot), axis=-1)
    return order[..., :top_k]


def _keep_top(out: Summary, value: np.ndarray, ident: np.ndarray, pos: np.ndarray, top_k: int) -> Summary:
    """``out`` with the ``top_k`` largest of candidates ``value``/``ident`` ``[layer, head, stat, candidate]`` (ties
    to the smaller id; empty slots, id -1 and value -inf, last) and their positions ``[..., candidate, p, 2]``."""
    order = _top_order(value, ident, top_k)
    k = order.shape[-1]
    out.top_value = np.full((*value.shape[:3], top_k), -np.inf)
    out.top_id = np.full((*value.shape[:3], top_k), -1, dtype=np.int64)
    out.top_pos = np.full((*value.shape[:3], top_k, *pos.shape[4:]), -1, dtype=np.int32)
    out.top_value[..., :k] = np.take_along_axis(value, order, -1)
    out.top_id[..., :k] = np.take_along_axis(ident, order, -1)
    out.top_pos[..., :k, :, :] = np.take_along_axis(pos, order[..., None, None], 3)
    out.top_value[out.top_id < 0] = -np.inf
    return out
