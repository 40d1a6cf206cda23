"""Aggregating heads, hiding tokens and thresholding attention matrices (numpy only)."""
from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from attnviz.result import AttentionResult

FUSIONS = ("mean", "max", "min")

Attention = np.ndarray | AttentionResult
"""What analyses read: the full ``[layer, head, query, key]`` weights, or a result (read a block of rows at a time,
so a long input never needs the full tensor)."""


def fuse_heads(weights: np.ndarray, how: str = "mean") -> np.ndarray:
    """Fuse the head axis of ``[..., head, query, key]`` into ``[..., query, key]``.

    ``mean`` keeps rows summing to 1; ``max`` and ``min`` do not (they show the strongest/weakest head).
    """
    if how not in FUSIONS:
        raise ValueError(f"head fusion must be one of {FUSIONS}, got {how!r}")
    return getattr(np, how)(weights, axis=-3).astype(np.float32)


def attention_shape(attention: Attention) -> tuple[int, int, int, int]:
    """``(layer, head, query, key)`` of weights or of a result."""
    if isinstance(attention, AttentionResult):
        return attention.n_layers, attention.n_heads, attention.n_tokens, attention.n_keys
    if np.ndim(attention) != 4:
        raise ValueError(f"attention must be [layer, head, query, key], got shape {np.shape(attention)}")
    return tuple(int(n) for n in np.shape(attention))  # type: ignore[return-value]


def fused_layer(attention: Attention, layer: int, how: str = "mean") -> np.ndarray:
    """One layer's heads fused (:func:`fuse_heads`), float32 ``[query, key]``; a result's layer is read a block of
    rows at a time (only the fused layer is ever whole), or, for the mean, taken as its forward kept it
    (:meth:`AttentionResult.kept_mean`: read-only)."""
    blocks = list(fused_row_blocks(attention, layer, how))
    if len(blocks) == 1:
        return blocks[0][2]()
    out = np.empty((attention.n_tokens, attention.n_keys), dtype=np.float32)
    for a, b, rows in blocks:
        out[a:b] = rows()
    return out


def fused_row_blocks(attention: Attention, layer: int, how: str = "mean"
                     ) -> Iterator[tuple[int, int, Callable[[], np.ndarray]]]:
    """One layer's heads fused (:func:`fuse_heads`), a block of rows at a time: ``(start, stop, rows)``, where
    ``rows()`` computes float32 ``[stop - start, key]`` (a caller that needs no row of a block skips its cost). A
    result's rows are computed block by block; weights, and a result's kept mean, are one block."""
    if how not in FUSIONS:
        raise ValueError(f"head fusion must be one of {FUSIONS}, got {how!r}")
    if not isinstance(attention, AttentionResult):
        yield 0, attention_shape(attention)[2], lambda: fuse_heads(np.asarray(attention)[layer], how)
        return
    kept = attention.kept_mean(layer) if how == "mean" else None
    if kept is not None:
        yield 0, attention.n_tokens, lambda: kept
        return
    for a, b in attention.row_blocks():
        yield a, b, lambda a=a, b=b: fuse_heads(attention.layer_rows(layer, a, b), how)


def renormalise_rows(matrix: np.ndarray) -> np.ndarray:
    """Divide each row (over ``key``) by its sum; rows that sum to 0 stay 0, and a row holding NaN or inf comes out
    with NaN (never as a silent row of zeros: the views and analyses downstream refuse it)."""
    sums = matrix.sum(axis=-1, keepdims=True)
    return np.divide(matrix, sums, out=np.zeros_like(matrix), where=(sums > 0) | ~np.isfinite(sums))


def keep_tokens(matrix: np.ndarray, keep: np.ndarray, renormalise: bool = True) -> np.ndarray:
    """Keep only the positions where ``keep`` is True on both the query and key axes.

    Args:
        matrix: ``[..., query, key]`` self-attention.
        keep: bool ``[query]``.
        renormalise: rescale each remaining row to sum to 1 (the attention a token pays to kept tokens).
    Returns:
        ``[..., query', key']``.
    """
    keep = np.asarray(keep, dtype=bool)
    if keep.shape != (matrix.shape[-1],) or matrix.shape[-2] != matrix.shape[-1]:
        raise ValueError(f"keep mask of shape {keep.shape} does not fit a matrix of shape {matrix.shape}")
    out = matrix[..., keep, :][..., keep]
    return renormalise_rows(out) if renormalise else out


def threshold(matrix: np.ndarray, minimum: float) -> np.ndarray:
    """Set weights below ``minimum`` to 0 (for display; rows are not renormalised)."""
    if minimum <= 0:
        return matrix
    return np.where(matrix >= minimum, matrix, 0).astype(matrix.dtype)
