"""Attention rollout across layers (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers")."""
from __future__ import annotations

import numpy as np

from attnviz.analysis.aggregate import fuse_heads, renormalise_rows


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
    if not np.isfinite(fused).all():  # else NaN rows silently become 0 (renormalise_rows) and the product garbage
        raise ValueError("weights are not finite (NaN or inf): rollout and flow need finite attention weights")
    n = fused.shape[-1]
    if discard_ratio > 0:
        flat = fused.reshape(fused.shape[0], -1).copy()  # [layer, query*key]
        k = int(flat.shape[1] * discard_ratio)
        lowest = np.argsort(flat, axis=1, kind="stable")[:, :k]  # [layer, k]
        for layer, cols in enumerate(lowest):
            flat[layer, cols[cols != 0]] = 0
        fused = flat.reshape(fused.shape)
    eye = np.eye(n)
    return renormalise_rows(0.5 * fused + 0.5 * eye)


def rollout(weights: np.ndarray, head_fusion: str = "mean", discard_ratio: float = 0.0) -> np.ndarray:
    """Attention rollout: ``R = A_L ... A_2 A_1`` with ``A_l`` from :func:`residual_attention`.

    Args:
        weights: ``[layer, head, query, key]`` self-attention.
    Returns:
        ``[query, key]`` float32: how much each output position draws on each input token; rows sum to 1.
    Raises:
        ValueError: as :func:`residual_attention` (wrong shape, NaN or inf).
    """
    layers = residual_attention(weights, head_fusion, discard_ratio)
    result = np.eye(layers.shape[-1])
    for a in layers:
        result = a @ result
    return result.astype(np.float32)
