"""Gradient-weighted attention relevance (Chefer et al. 2021, "Generic Attention-model Explainability for
Interpreting Bi-Modal and Encoder-Decoder Transformers"), the self-attention rule, numpy only.

Per layer the heads are fused by the positive part of gradient times attention, averaged over heads (the paper's
rule 5): ``Ā = E_h[(∇A ⊙ A)⁺]``. Starting from ``R = I`` (each token is relevant to itself), every layer from the
first up adds what flows through its attention (rule 6): ``R ← R + Ā · R``. The gradients are those of the target's
logit (before softmax) with respect to each layer's attention weights. Row ``q`` of ``R`` says how much each input
token is relevant to the prediction made at position ``q`` ([CLS] for a ViT, the last token for a causal LM).
"""
from __future__ import annotations

import numpy as np


def fuse_gradients(weights: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """``Ā = E_h[(∇A ⊙ A)⁺]`` of one layer or of every layer.

    Args:
        weights: ``[..., head, query, key]`` attention weights.
        grads: the gradient of the target logit with respect to ``weights``, same shape.
    Returns:
        ``[..., query, key]`` float32, non-negative (rows do not sum to 1).
    Raises:
        ValueError: shapes differ or are not ``[..., head, query, key]`` self-attention; values not finite.
    """
    if weights.shape != grads.shape or weights.ndim < 3 or weights.shape[-1] != weights.shape[-2]:
        raise ValueError(f"relevance needs weights and gradients of one [layer, head, query, key] shape, got "
                         f"{weights.shape} and {grads.shape}")
    cam = np.multiply(grads, weights, dtype=np.float32)
    if not np.isfinite(cam).all():
        raise ValueError("attention weights or their gradients are not finite (NaN or inf)")
    return np.clip(cam, 0, None, out=cam).mean(axis=-3)


def relevance_rollup(weights: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Relevance of every input token for the prediction at every position: ``R = I``, then ``R ← R + Ā_l · R``
    for ``l = 1 .. L`` (Chefer et al. 2021, rules 5 and 6).

    Args:
        weights: ``[layer, head, query, key]`` attention weights.
        grads: ``[layer, head, query, key]`` gradient of the target logit with respect to ``weights``.
    Returns:
        ``[query, key]`` float32; row ``q`` is the relevance of each key token for the output at ``q``. The
        identity it starts from stays in: ``R[q, q] >= 1``.
    """
    if weights.shape != grads.shape or weights.ndim != 4:
        raise ValueError(f"relevance needs weights and gradients of one [layer, head, query, key] shape, got "
                         f"{weights.shape} and {grads.shape}")
    r = np.eye(weights.shape[-1])
    for w, g in zip(weights, grads, strict=True):  # one layer at a time: no [layer, head, query, key] temporaries
        r = r + fuse_gradients(w, g) @ r
    return r.astype(np.float32)
