"""A result's self-attention as a page shows it: some positions hidden (special tokens, the first token) with each
row renormalised over the others, optionally as norm-based contributions (each weight times its key's value norm,
:meth:`attnviz.result.AttentionResult.contribution`), and values below a threshold set to 0; every head computed
when asked for.

:class:`ViewedAttention` serves what the views draw (one head, some heads of a layer, a fused layer, the all-heads
overview) from an :class:`attnviz.result.AttentionResult` a block of rows at a time, so a long input never needs its
``[layer, head, query, key]`` tensor. With nothing hidden, its numbers are the result's own.
"""
from __future__ import annotations

import numpy as np

from attnviz.analysis.aggregate import FUSIONS, fuse_heads, renormalise_rows, threshold
from attnviz.result import NO_NORMS, AttentionResult


class ViewedAttention:
    """The heads of ``result`` with positions hidden and a threshold applied.

    Args:
        result: the run's result.
        keep: bool ``[query]``, the positions shown (all by default); only self-attention hides positions (a
            cross-attention result is shown whole).
        minimum: values below it are shown as 0 (rows are not renormalised for it); it applies to what is shown,
            weights or contributions.
        contributions: show norm-based contributions instead of weights: each shown (kept, renormalised) weight
            times the value norm of its key (:meth:`~attnviz.result.AttentionResult.value_norms`).

    Raises:
        ValueError: a bad ``keep``, or ``contributions`` of a model without value norms.
    """

    def __init__(self, result: AttentionResult, keep: np.ndarray | None = None, minimum: float = 0.0,
                 contributions: bool = False) -> None:
        self.result, self.minimum, self.contributions = result, float(minimum), bool(contributions)
        if keep is not None:
            keep = np.asarray(keep, dtype=bool)
            if keep.shape != (result.n_tokens,):
                raise ValueError(f"keep mask of shape {keep.shape} does not fit {result.n_tokens} positions")
            if keep.all() or result.key_tokens is not None:
                keep = None
            elif not keep.any():
                raise ValueError("every position would be hidden")
        self.keep = keep
        self.index = np.arange(result.n_tokens) if keep is None else np.flatnonzero(keep)
        """Position in the result of each position shown."""
        self.norms = None
        """float32 ``[layer, head, key']``: value norms of the keys shown (None unless ``contributions``)."""
        if self.contributions:
            norms = result.value_norms()
            if norms is None:
                raise ValueError(NO_NORMS.format(model=result.model))
            self.norms = norms if keep is None else norms[..., self.index]

    @property
    def n_layers(self) -> int:
        return self.result.n_layers

    @property
    def n_heads(self) -> int:
        return self.result.n_heads

    @property
    def n_tokens(self) -> int:
        """Positions shown (queries)."""
        return len(self.index)

    @property
    def tokens(self) -> list[str]:
        """Labels of the positions shown."""
        return [self.result.tokens[i] for i in self.index]

    @property
    def keys(self) -> list[str]:
        """Labels of the key positions shown."""
        return self.tokens if self.keep is not None else list(self.result.keys)

    @property
    def measure(self) -> str:
        """What the values are, for titles and colour bars: ``"weight"`` or ``"contribution"``."""
        return "contribution" if self.contributions else "weight"

    def _shown(self, rows: np.ndarray, layer: int, head: int | None = None) -> np.ndarray:
        """``[..., rows, key]`` of the result's kept rows of ``layer`` (one head, or every head on the first axis)
        -> kept keys, renormalised, times the keys' value norms for contributions, thresholded."""
        if self.keep is not None:
            rows = renormalise_rows(rows[..., self.index])
        if self.norms is not None:
            norms = self.norms[layer] if head is None else self.norms[layer, head]  # [head, key'] or [key']
            rows = rows * (norms[:, None, :] if head is None else norms[None, :])
        return threshold(rows, self.minimum)

    def layer_rows(self, layer: int, start: int, stop: int) -> np.ndarray:
        """float32 ``[head, stop - start, key']``: shown rows ``start..stop-1`` of every head of one layer."""
        if self.keep is None:
            return self._shown(self.result.layer_rows(layer, start, stop), layer)
        first, last = int(self.index[start]), int(self.index[stop - 1])
        rows = self.result.layer_rows(layer, first, last + 1)[:, self.index[start:stop] - first]
        return self._shown(rows, layer)

    def head(self, layer: int, head: int) -> np.ndarray:
        """float32 ``[query', key']`` of one head as shown (a new array: keeping it keeps nothing else)."""
        w = self.result.head(layer, head)
        if self.keep is not None:
            w = w[self.index]
        out = self._shown(w, layer, head)
        return out.copy() if np.shares_memory(out, w) else out

    def layer(self, layer: int, heads: list[int] | None = None) -> np.ndarray:
        """float32 ``[head', query', key']`` of the given heads of one layer (all by default), as shown."""
        heads = list(range(self.n_heads)) if heads is None else list(heads)
        return np.stack([self.head(layer, h) for h in heads])

    def fused(self, layer: int, how: str = "mean") -> np.ndarray:
        """float32 ``[query', key']``: one layer's heads as shown, fused by ``how`` (:func:`fuse_heads`), read a
        block of rows at a time."""
        if how not in FUSIONS:
            raise ValueError(f"head fusion must be one of {FUSIONS}, got {how!r}")
        out = np.empty((self.n_tokens, len(self.keys)), dtype=np.float32)
        for a, b in self._blocks():
            out[a:b] = fuse_heads(self.layer_rows(layer, a, b), how)
        return out

    def overview(self, size: int) -> np.ndarray:
        """float32 ``[layer, head, s, s']``: block maxima of every head as shown (what the all-heads grid draws).
        The result's own :meth:`~attnviz.result.AttentionResult.overview` of the positions shown (of their
        contributions when on), thresholded (the maximum of thresholded values is the thresholded maximum)."""
        if self.contributions:
            return threshold(self.result.overview(size, self.keep, contributions=True), self.minimum)
        return threshold(self.result.overview(size, self.keep), self.minimum)

    def _blocks(self) -> list[tuple[int, int]]:
        step = max(1, (32 << 20) // (4 * self.n_heads * max(self.result.n_keys, 1)))
        return [(a, min(a + step, self.n_tokens)) for a in range(0, self.n_tokens, step)]

