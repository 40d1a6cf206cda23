"""Attention rollout across layers (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers")."""
from __future__ import annotations

import numpy as np

from attnviz.analysis.aggregate import (
    Attention,
    attention_shape,
    fuse_heads,
    fused_layer,
    fused_row_blocks,
    renormalise_rows,
)
from attnviz.result import AttentionResult

ROLLOUT_MAX_TOKENS = 1024
"""Longest input whose full rollout (every query) :func:`rollout` computes from a result read head by head: the
product of ``[query, key]`` matrices costs ``layers x tokens^3`` (about 2 s for 30 layers at 1,024 tokens on 2 cores,
8x that at 2,048). Longer inputs take the rollout of one query, :func:`rollout_row` (``layers x tokens^2``)."""


def residual_attention(weights: np.ndarray, head_fusion: str = "mean", discard_ratio: float = 0.0) -> np.ndarray:
    """Per-layer attention with the residual connection: ``A = 0.5 * W + 0.5 * I``, rows renormalised.

    Args:
        weights: ``[layer, head, query, key]``.
        head_fusion: ``"mean"``, ``"max"`` or ``"min"`` over heads.
        discard_ratio: share of the lowest fused weights per layer set to 0 before adding the identity
            (vit-explain); the weight of the first token's own row ``[0, 0]`` is never discarded.
    Returns:
        ``[layer, query, key]``, float64, rows summing to 1.
    Raises:
        ValueError: weights not ``[layer, head, query, key]`` self-attention, or not finite (NaN or inf; checked
            on the fused heads, so an inf that max/min fusion drops passes).
    """
    if weights.ndim != 4 or weights.shape[-1] != weights.shape[-2]:
        raise ValueError(f"rollout needs self-attention [layer, head, query, key], got shape {weights.shape}")
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"discard_ratio must be in [0, 1), got {discard_ratio}")
    fused = fuse_heads(weights, head_fusion).astype(np.float64)  # [layer, query, key]
    return np.stack([residual_layer(f, discard_ratio) for f in fused])


def _finite64(fused: np.ndarray) -> np.ndarray:
    """``fused`` as float64 (itself when it is already), checked finite: else NaN rows silently become 0
    (:func:`renormalise_rows`) and the product garbage."""
    fused = np.asarray(fused, dtype=np.float64)
    if not np.isfinite(fused).all():
        raise ValueError("weights are not finite (NaN or inf): rollout and flow need finite attention weights")
    return fused


def residual_layer(fused: np.ndarray, discard_ratio: float = 0.0) -> np.ndarray:
    """One layer of :func:`residual_attention` from its fused heads ``[query, key]``: float64, rows summing to 1.

    Raises:
        ValueError: NaN or inf in ``fused``.
    """
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"discard_ratio must be in [0, 1), got {discard_ratio}")
    given = fused
    fused = _finite64(fused)
    if discard_ratio > 0:
        flat = fused.reshape(-1).copy()  # [query*key]
        k = int(flat.shape[0] * discard_ratio)
        lowest = np.argsort(flat, kind="stable")[:k]
        flat[lowest[lowest != 0]] = 0
        fused = flat.reshape(fused.shape)
    # The same operations as 0.5 * fused and renormalise_rows, in place where the array is this function's own
    # (a layer of 1,025 tokens is 8 MB: each new array and pass over it counts, 12 times per rollout).
    out = np.multiply(fused, 0.5, out=fused if fused is not given else None)
    out[np.diag_indices(min(out.shape))] += 0.5
    sums = out.sum(axis=-1, keepdims=True)
    if (sums > 0).all():  # finite: the weights are
        return np.divide(out, sums, out=out)
    return renormalise_rows(out)


def _check(attention: Attention, discard_ratio: float) -> tuple[int, int, int, int]:
    shape = attention_shape(attention)
    if shape[-1] != shape[-2] or (isinstance(attention, AttentionResult) and attention.key_tokens is not None):
        raise ValueError(f"rollout needs self-attention [layer, head, query, key], got shape {shape}")
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"discard_ratio must be in [0, 1), got {discard_ratio}")
    return shape


def rollout(weights: Attention, head_fusion: str = "mean", discard_ratio: float = 0.0) -> np.ndarray:
    """Attention rollout: ``R = A_L ... A_2 A_1`` with ``A_l`` from :func:`residual_attention`.

    Args:
        weights: ``[layer, head, query, key]`` self-attention, or a result (read one fused layer at a time).
    Returns:
        ``[query, key]`` float32: how much each output position draws on each input token; rows sum to 1.
    Raises:
        ValueError: as :func:`residual_attention` (wrong shape, NaN or inf); a result over
            :data:`ROLLOUT_MAX_TOKENS` tokens (take one query's rollout, :func:`rollout_row`).
    """
    if not isinstance(weights, AttentionResult):
        layers = residual_attention(weights, head_fusion, discard_ratio)
        result = np.eye(layers.shape[-1])
        for a in layers:
            result = a @ result
        return result.astype(np.float32)
    n_layers, _, n, _ = _check(weights, discard_ratio)
    if n > ROLLOUT_MAX_TOKENS:
        raise ValueError(f"The rollout of all {n} tokens at once costs {n_layers} products of {n} x {n} matrices; "
                         f"up to {ROLLOUT_MAX_TOKENS} tokens it is computed whole. Take one token's rollout "
                         "(rollout_row) instead.")
    result = np.eye(n)
    for layer in range(n_layers):
        result = residual_layer(fused_layer(weights, layer, head_fusion), discard_ratio) @ result
    return result.astype(np.float32)


def rollout_row(weights: Attention, query: int, head_fusion: str = "mean", discard_ratio: float = 0.0,
                progress=None) -> np.ndarray:
    """One query's row of :func:`rollout`, float32 ``[key]``: ``e_q A_L ... A_1``, a vector pushed down through
    the layers (``layers x tokens^2``; never a product of two matrices), so long inputs need only one fused layer at
    a time. Equal to ``rollout(weights)[query]`` within float64 rounding.

    Args:
        progress: optional ``progress(done, total)`` called after each layer.
    Raises:
        ValueError: as :func:`rollout`; a query out of range.
    """
    n_layers, _, n, _ = _check(weights, discard_ratio)
    if isinstance(query, bool) or not isinstance(query, (int, np.integer)) or not 0 <= query < n:
        raise ValueError(f"query must be a position in 0..{n - 1}, got {query!r}")
    vector = np.zeros(n)
    vector[query] = 1.0
    for done, layer in enumerate(reversed(range(n_layers)), start=1):
        if discard_ratio > 0:  # its threshold is over the whole layer
            # Not ``vector @ layer``: numpy hands that to its BLAS, which splits the one pass over memory across
            # its threads; beside busy cores (2 here) 12 such products at 1,025 tokens took 0.7-1.2 s, not 0.01 s.
            vector = np.einsum("i,ij->j", vector, residual_layer(fused_layer(weights, layer, head_fusion),
                                                                 discard_ratio))
        else:
            vector = _pushed(vector, weights, layer, head_fusion)
        if progress is not None:
            progress(done, n_layers)
    return vector.astype(np.float32)


def _pushed(vector: np.ndarray, weights: Attention, layer: int, head_fusion: str) -> np.ndarray:
    """``vector @ residual_layer(fused_layer(weights, layer, head_fusion))`` without the layer whole: a block of
    fused rows at a time, and only the blocks where ``vector`` is not 0 (a causal model's early query needs only the
    rows before it). Row ``i`` of the residual layer is ``(0.5 f_i + 0.5 e_i) / s_i`` with ``s_i = 0.5 sum(f_i) +
    0.5``, so ``vector`` times it is ``0.5 (vector / s) @ f + 0.5 (vector / s)``: a 4,096-token layer takes one pass
    over its rows instead of five over a float64 copy."""
    out = np.zeros(vector.shape[0])
    for a, b, rows in fused_row_blocks(weights, layer, head_fusion):
        if not vector[a:b].any():
            continue
        fused = _finite64(rows())
        scaled = vector[a:b] / (0.5 * fused.sum(axis=-1) + 0.5)
        out += 0.5 * np.einsum("i,ij->j", scaled, fused)
        out[a:b] += 0.5 * scaled
    return out
