"""Attention heads computed on demand from what a model's attention computes them from (torch kernels).

A captured layer is its queries ``q [head, query, dim]`` and keys ``k [kv_head, key, dim]`` as the model's
attention received them (after positional encoding such as RoPE; keys before grouped-query attention repeats
them), its ``scaling``, an optional logit ``softcap`` and its mask as one interval of allowed keys per query,
``lo[query] <= key < hi[query]`` (causal, sliding-window and padding masks are all of that form). A head is then
what eager attention computes::

    softmax(tanh?(q kᵀ · scaling) + mask)      mask: 0 on allowed keys, float32's minimum elsewhere

with the same torch operations, so the numbers are eager's (equal within float rounding, ≤ 1e-6). Rows are
computed in blocks of queries over the keys their block may see (a causal head costs half of a full one), so no
``[query, key]`` tensor larger than a block ever exists beyond the one asked for.

The forward pass (:mod:`attnviz.models.capture`) uses :func:`attend` for the model's own attention output, so the
forward and the heads shown later are the same computation.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import TypeVar

import numpy as np
import torch

from attnviz.models.threads import SHORT_KEYS, run_threads, work_slot
from attnviz.result import NO_NORMS, block_starts

T = TypeVar("T")

BLOCK_BYTES = 8 << 20
"""Scores of one block of queries, all heads (8 MiB): 64 rows of 9 heads at 4,096 keys. Measured for SmolLM2's
shapes at 4,096 tokens on 2 cores: blocks of 64 rows take 0.17 s per layer, 128 rows 0.26 s, 512 rows 0.9 s (the
scores then leave the cache)."""
MIN = torch.finfo(torch.float32).min


def block_rows(n_heads: int, n_keys: int) -> int:
    """Rows per block so that ``[head, rows, key]`` float32 scores stay near :data:`BLOCK_BYTES` (at least 16)."""
    return max(16, BLOCK_BYTES // (4 * n_heads * max(n_keys, 1)))


def grouped(x: torch.Tensor, n_kv: int) -> torch.Tensor:
    """``[..., head, rows, n]`` as ``[..., kv_head, group, rows, n]`` (the query heads that share a kv head)."""
    return x.unflatten(-3, (n_kv, x.shape[-3] // n_kv))


def attention_weights(q: torch.Tensor, k: torch.Tensor, scaling: float, softcap: float | None,
                      mask: torch.Tensor | None, out: torch.Tensor | None = None) -> torch.Tensor:
    """Eager attention weights of queries ``[..., head, rows, dim]`` over keys ``[..., kv_head, keys, dim]``
    (grouped-query attention broadcast, not copied), float32 ``[..., head, rows, keys]``; ``mask`` is additive,
    broadcastable to that.

    Computed in one buffer, step by step in place: the scores (scaled, soft-capped as Gemma 2 does, masked), then
    their softmax; the same operations and numbers as eager's step after step into new tensors, with a third of
    their memory (a 512-token MiniLM layer: 12.6 MB instead of up to 38). ``out``: a contiguous float32 buffer of
    that shape to compute in (a long input's layers reuse one instead of each faulting in a fresh one); else the
    scores' own."""
    n_kv = k.shape[-3]
    if n_kv == q.shape[-3]:
        out = torch.matmul(q, k.transpose(-1, -2), out=out)
    elif out is None:
        out = torch.matmul(grouped(q, n_kv), k.unsqueeze(-3).transpose(-1, -2)).flatten(-4, -3)
    else:
        torch.matmul(grouped(q, n_kv), k.unsqueeze(-3).transpose(-1, -2), out=grouped(out, n_kv))
    out.mul_(scaling)
    if softcap is not None:
        out.div_(softcap).tanh_().mul_(softcap)
    if mask is not None:
        out.add_(mask)
    return torch.softmax(out, dim=-1, dtype=torch.float32, out=out)


def weighted_values(w: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``w [..., head, rows, keys] @ v [..., kv_head, keys, dim]`` -> ``[..., head, rows, dim]``."""
    n_kv = v.shape[-3]
    if n_kv == w.shape[-3]:
        return torch.matmul(w, v)
    return torch.matmul(grouped(w, n_kv), v.unsqueeze(-3)).flatten(-4, -3)


def interval_mask(lo: torch.Tensor, hi: torch.Tensor, k0: int, k1: int) -> torch.Tensor | None:
    """Additive mask ``[query, k1 - k0]`` of keys ``k0..k1-1`` (0 where ``lo <= key < hi``, else float32's minimum,
    as eager masks are made); None when every key of the range is allowed for every query."""
    if int(lo.max()) <= k0 and int(hi.min()) >= k1:
        return None
    keys = torch.arange(k0, k1)
    allowed = (keys >= lo[:, None]) & (keys < hi[:, None])
    return torch.where(allowed, torch.zeros((), dtype=torch.float32), torch.tensor(MIN))


def key_range(lo: torch.Tensor, hi: torch.Tensor, n_keys: int) -> tuple[int, int]:
    """Keys ``k0..k1-1`` that any of these queries may see (all keys if a row sees none: eager's uniform row)."""
    if bool((hi <= lo).any()):
        return 0, n_keys
    return int(lo.min()), int(hi.max())


def blocks(n: int, rows: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, rows):
        yield start, min(n, start + rows)


def computed(method: Callable[..., T]) -> Callable[..., T]:
    """A :class:`CapturedHeads` method run without autograd, on one thread for a short input (up to
    :data:`attnviz.models.threads.SHORT_KEYS` keys: small kernels, see :mod:`attnviz.models.threads`), in one of the
    process's work slots (:func:`attnviz.models.threads.work_slot`: none to wait for unless a server set a limit)."""
    @functools.wraps(method)
    def wrapper(self: CapturedHeads, *args: object, **kwargs: object) -> T:
        with work_slot(), torch.inference_mode(), run_threads(self.shape[3] <= SHORT_KEYS):
            return method(self, *args, **kwargs)
    return wrapper


class CapturedHeads:
    """A :class:`attnviz.result.HeadSource` computing heads from captured queries and keys (numpy arrays: the
    result pickles without torch tensors).

    Args:
        q: float32 ``[layer, head, query, dim]``.
        k: float32 ``[layer, kv_head, key, dim]``; query head ``h`` reads kv head ``h // (head / kv_head)``.
        scaling: ``[layer]`` factor of the scores.
        lo, hi: int32 ``[layer, query]``: allowed keys ``lo <= key < hi``.
        softcap: ``[layer]`` logit soft-cap or None per layer; None for none at all.
        norms: float32 ``[layer, head, key]`` value norms through the output projection, or None.
        overviews: overviews the forward made, by size (float32 ``[layer, head, s, s']``).
        means: float32 ``[layer, query, key]``: each layer's heads averaged, as the forward computed them (kept
            for rollout, which multiplies them: :meth:`attnviz.result.AttentionResult.kept_mean`), or None.
    """

    def __init__(self, q: np.ndarray, k: np.ndarray, scaling: list[float], lo: np.ndarray, hi: np.ndarray,
                 softcap: list[float | None] | None = None, norms: np.ndarray | None = None,
                 overviews: dict[int, np.ndarray] | None = None, means: np.ndarray | None = None) -> None:
        n_layers, n_heads, n_query, _ = q.shape
        if k.shape[0] != n_layers or n_heads % k.shape[1] or k.shape[3] != q.shape[3]:
            raise ValueError(f"keys {k.shape} do not fit queries {q.shape}")
        if lo.shape != (n_layers, n_query) or hi.shape != lo.shape or len(scaling) != n_layers:
            raise ValueError("one scaling per layer and one key interval per query are needed")
        self.q, self.k, self.lo, self.hi, self.norms = q, k, lo, hi, norms
        self.overviews = dict(overviews or {})
        if means is not None and means.shape != (n_layers, n_query, k.shape[2]):
            raise ValueError(f"means {means.shape} do not fit {n_layers} layers of {n_query} x {k.shape[2]}")
        self.means = means
        self.scaling = [float(s) for s in scaling]
        self.softcap = list(softcap) if softcap is not None else [None] * n_layers
        self.shape = (n_layers, n_heads, n_query, int(k.shape[2]))
        self.group = n_heads // k.shape[1]

    @property
    def nbytes(self) -> int:
        arrays = (self.q, self.k, self.lo, self.hi, self.norms, self.means, *self.overviews.values())
        return int(sum(a.nbytes for a in arrays if a is not None))

    def value_norms(self) -> np.ndarray | None:
        return self.norms

    def _block(self, layer: int, heads: slice, start: int, stop: int) -> tuple[torch.Tensor, int, int]:
        """``(w, k0, k1)``: float32 ``[head, stop - start, k1 - k0]`` weights of heads ``heads`` over the keys
        ``k0..k1-1`` any of these rows may see (every other weight of the rows is 0).

        The mask is applied as eager's additive one acts: an allowed score plus 0 is itself, and a masked score
        plus float32's minimum is that minimum (its ulp, ~2e31, dwarfs any score), which ``masked_fill`` writes
        directly, without an additive ``[rows, keys]`` float mask."""
        n_keys = self.shape[3]
        lo, hi = torch.from_numpy(self.lo[layer, start:stop]), torch.from_numpy(self.hi[layer, start:stop])
        k0, k1 = key_range(lo, hi, n_keys)
        q = torch.from_numpy(self.q[layer, heads, start:stop])  # [head, rows, dim]
        kv = slice(heads.start // self.group, (heads.stop - 1) // self.group + 1)
        k = torch.from_numpy(self.k[layer, kv, k0:k1])  # [kv_head, keys, dim]
        if q.shape[0] % self.group:  # part of a group (one head): its kv head
            k = k[:1]
        if int(lo.max()) <= k0 and int(hi.min()) >= k1:  # every key of the range allowed for every row
            return attention_weights(q, k, self.scaling[layer], self.softcap[layer], None), k0, k1
        n_kv = k.shape[-3]
        if n_kv == q.shape[-3]:
            scores = torch.matmul(q, k.transpose(-1, -2))
        else:  # a kv head's query heads as one product: the broadcast one's numbers, in half its time for few rows
            scores = torch.matmul(q.reshape(n_kv, -1, q.shape[-1]), k.transpose(-1, -2)).view(*q.shape[:2], -1)
        scores = scores * self.scaling[layer]
        if self.softcap[layer] is not None:
            scores = torch.tanh(scores / self.softcap[layer]) * self.softcap[layer]
        keys = torch.arange(k0, k1)
        blocked = (keys < lo[:, None]) | (keys >= hi[:, None])  # [rows, keys]
        return torch.softmax(scores.masked_fill_(blocked, MIN), dim=-1, dtype=torch.float32), k0, k1

    def _weights(self, layer: int, heads: slice, start: int, stop: int) -> torch.Tensor:
        """float32 ``[head, stop - start, key]`` of heads ``heads`` (zeros outside each row's allowed keys)."""
        n_keys = self.shape[3]
        w, k0, k1 = self._block(layer, heads, start, stop)
        if (k0, k1) == (0, n_keys):
            return w
        out = torch.zeros((*w.shape[:-1], n_keys), dtype=torch.float32)
        out[..., k0:k1] = w
        return out

    @computed
    def rows(self, layer: int, head: int, start: int, stop: int) -> np.ndarray:
        """float32 ``[stop - start, key]`` of one head (computed in blocks of rows)."""
        n_keys = self.shape[3]
        step = block_rows(1, n_keys)
        if stop - start <= step:
            return self._weights(layer, slice(head, head + 1), start, stop)[0].numpy()
        out = np.empty((stop - start, n_keys), dtype=np.float32)
        for a, b in blocks(stop - start, step):
            out[a:b] = self._weights(layer, slice(head, head + 1), start + a, start + b)[0].numpy()
        return out

    @computed
    def layer_rows(self, layer: int, start: int, stop: int) -> np.ndarray:
        """float32 ``[head, stop - start, key]`` of every head of a layer (in blocks of rows)."""
        n_heads, n_keys = self.shape[1], self.shape[3]
        step = block_rows(n_heads, n_keys)
        if stop - start <= step:
            return self._weights(layer, slice(0, n_heads), start, stop).numpy()
        out = np.empty((n_heads, stop - start, n_keys), dtype=np.float32)
        for a, b in blocks(stop - start, step):
            out[:, a:b] = self._weights(layer, slice(0, n_heads), start + a, start + b).numpy()
        return out

    @computed
    def overview(self, size: int, keep: np.ndarray | None = None, contributions: bool = False) -> np.ndarray:
        """float32 ``[layer, head, s, s']`` block maxima (:func:`attnviz.result.block_starts`), every layer's heads
        computed together in blocks of queries and reduced at once: nothing of ``[query, key]`` size is kept.
        ``keep``: bool ``[query]`` of a self-attention: only those positions, each row renormalised over them.
        ``contributions``: of each weight (after that renormalisation) times its key's value norm
        (:attr:`norms`; ``ValueError`` without them). The forward's own overview is returned when it was made at
        this size (:attr:`overviews`: weights of every position)."""
        if keep is None and not contributions and size in self.overviews:
            return self.overviews[size]
        if contributions and self.norms is None:
            raise ValueError(NO_NORMS.format(model="This model"))
        n_layers, n_heads, n_query, n_keys = self.shape
        kept = None if keep is None else torch.from_numpy(np.flatnonzero(keep))
        n_rows, n_cols = (n_query, n_keys) if kept is None else (len(kept), len(kept))
        maxima = BlockMaxima(n_heads, n_rows, n_cols, size)
        out = np.zeros((n_layers, n_heads, *maxima.shape), dtype=np.float32)
        step = block_rows(n_heads, n_keys)
        rank = None if keep is None else torch.from_numpy(np.cumsum(keep) - 1)  # kept position -> shown row
        for layer in range(n_layers):
            maxima.clear()
            # [head, 1, key'] value norms of the keys shown, or None for weights
            norms = None if not contributions else torch.from_numpy(self.norms[layer]).unsqueeze(1)
            if norms is not None and kept is not None:
                norms = norms.index_select(2, kept)
            for a, b in blocks(n_query, step):
                if kept is None:
                    w, k0, k1 = self._block(layer, slice(0, n_heads), a, b)  # [head, rows, k1 - k0]
                    maxima.add(w if norms is None else w.mul_(norms[..., k0:k1]), torch.arange(a, b), k0)
                    continue
                rows = torch.from_numpy(np.flatnonzero(keep[a:b]))
                if not len(rows):
                    continue
                w = self._weights(layer, slice(0, n_heads), a, b).index_select(1, rows).index_select(2, kept)
                sums = w.sum(-1, keepdim=True)
                w = torch.where(sums > 0, w / sums, torch.zeros((), dtype=w.dtype))
                maxima.add(w if norms is None else w.mul_(norms), rank[a + rows], 0)
            out[layer] = maxima.result().numpy()
        return out


class BlockMaxima:
    """Block maxima of one layer's heads, ``[head, s, s']`` (:func:`attnviz.result.block_starts` blocks of an
    ``n_rows x n_cols`` head), reduced from blocks of rows as they are computed: each row goes into its row block
    at once (one kernel for a block of rows), the key blocks are reduced at the end."""

    def __init__(self, n_heads: int, n_rows: int, n_cols: int, size: int) -> None:
        row_starts, key_starts = block_starts(n_rows, size), block_starts(n_cols, size)
        self.shape = (len(row_starts), len(key_starts))
        self.row_block = torch.from_numpy(np.repeat(np.arange(len(row_starts)),
                                                    np.diff(np.append(row_starts, n_rows))))
        self.cells = _cells(key_starts, n_cols)  # [key block, widest block]: key indices, the last repeated
        self.by_row = torch.zeros((n_heads, len(row_starts), n_cols), dtype=torch.float32)  # rows reduced first

    def clear(self) -> None:
        self.by_row.zero_()

    def add(self, w: torch.Tensor, rows: torch.Tensor, k0: int, h0: int = 0) -> None:
        """Weights ``w [head, rows, keys]`` of the heads ``h0..`` and rows ``rows`` (int64 row indices) over keys
        ``k0..``."""
        target = self.by_row[h0:h0 + w.shape[0], :, k0:k0 + w.shape[-1]]  # weights >= 0: the zeros start it
        target.index_reduce_(1, self.row_block[rows], w, "amax")

    def result(self) -> torch.Tensor:
        n_heads = self.by_row.shape[0]
        return self.by_row.index_select(-1, self.cells.reshape(-1)).view(n_heads, self.shape[0],
                                                                         *self.cells.shape).amax(-1)


def _cells(starts: np.ndarray, n: int) -> torch.Tensor:
    """``[block, widest]`` indices of each block's cells, its last cell repeated where the block is shorter."""
    last = np.append(starts[1:], n) - 1
    width = int((last - starts).max()) + 1
    return torch.from_numpy(np.minimum(starts[:, None] + np.arange(width), last[:, None]))
