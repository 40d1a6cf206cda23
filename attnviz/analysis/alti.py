"""ALTI: Aggregation of Layer-wise Token-to-token Interactions (Ferrando, Gállego & Costa-jussà 2022, "Measuring the
Mixing of Contextual Information in the Transformer"), numpy only.

The attention block of a layer (multi-head attention, its output bias, the residual connection and, in a post-norm
model, the layer norm) is linear in each input vector once the attention weights and the layer norm's scale are
fixed, so its output for token ``i`` decomposes into one vector per input token:

    y_i = Σ_j T_i(x_j) + b

* pre-norm (ViT, DINOv2, Llama): ``T_i(x_j) = [i = j] x_j + Σ_h α^h_ij f_h(x_j)`` with
  ``f_h(x) = λ ⊙ (n(x) W_V^h + b_V^h) W_O^h`` (``n`` the block's input norm, ``λ`` a layer scale if any) and
  ``b = λ ⊙ b_O``; ``y_i`` is the residual stream after the attention block.
* post-norm (BERT): ``T_i(x_j) = γ ⊙ (v_ij − mean(v_ij)) / σ_i`` with ``v_ij = [i = j] x_j + Σ_h α^h_ij f_h(x_j)``,
  ``σ_i`` the standard deviation the layer norm divides the whole sum by, and ``b`` its share of ``b_O`` plus ``β``.

The contribution of token ``j`` to ``y_i`` is how much closer ``T_i(x_j)`` is to ``y_i`` than nothing, in L1:
``c_ij = max(0, ‖y_i‖₁ − ‖y_i − T_i(x_j)‖₁)``, normalised so each row sums to 1. Across layers the matrices are
multiplied from the first layer up, with no identity added (the residual is already inside each ``C_l``):
``ALTI = C_L ⋯ C_2 · C_1``.

The vectors ``T_i(x_j)`` are ``[query, key, dim]`` per layer (600 MB for SmolLM2 at 512 tokens), so they are made for
a block of queries at a time (:data:`BLOCK_FLOATS` floats).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

BLOCK_FLOATS = 1 << 23
"""Floats of ``T_i(x_j)`` held at once (32 MB; twice that with the L1 distances)."""


@dataclass
class PostNorm:
    """The layer norm after the residual sum of a post-norm block: ``γ ⊙ (u − mean u) / sqrt(var u + eps) + β``."""

    gamma: np.ndarray  # [dim]
    beta: np.ndarray  # [dim]
    eps: float


@dataclass
class LayerParts:
    """What one attention block is made of, for one input.

    Attributes:
        x: ``[key, dim]`` the block's input, the residual stream (before any norm).
        weights: ``[head, query, key]`` attention weights; rows sum to 1.
        values: ``[head, key, dim]`` ``f_h(x_j)``: each head's value vector of each token through its slice of the
            output projection (and layer scale), without the output bias.
        bias: ``[dim]`` the output projection's bias (through the layer scale); zeros without one.
        norm: the post-norm after the residual sum, or ``None`` for a pre-norm block.
        causal: keys after the query have weight 0 (skipped).
    """

    x: np.ndarray
    weights: np.ndarray
    values: np.ndarray
    bias: np.ndarray
    norm: PostNorm | None = None
    causal: bool = False


@dataclass
class Decomposition:
    """``T_i(x_j)`` for a block of queries and the block's output ``y_i``."""

    vectors: np.ndarray  # [query, key, dim]
    output: np.ndarray  # [query, dim]


def decompose(parts: LayerParts, start: int = 0, stop: int | None = None) -> Decomposition:
    """``T_i(x_j)`` and ``y_i`` for the queries ``start .. stop - 1`` (keys after ``stop - 1`` left out when causal).

    Returns:
        vectors ``[query, key, dim]`` float32 and output ``[query, dim]`` float32 with ``y_i = Σ_j T_i(x_j) + b``.
    """
    n_heads, n, _ = parts.weights.shape
    stop = n if stop is None else stop
    keys = stop if parts.causal else n
    a = parts.weights[:, start:stop, :keys]  # [head, query, key]
    f = parts.values[:, :keys]  # [head, key, dim]
    # Σ_h α^h_ij f_h(x_j): for each key j, [query, head] @ [head, dim]
    t = np.matmul(a.transpose(2, 1, 0), f.transpose(1, 0, 2)).transpose(1, 0, 2)  # [query, key, dim]
    rows = np.arange(stop - start)
    t[rows, start + rows] += parts.x[start:stop]  # the residual: token i carries itself
    u = t.sum(axis=1) + parts.bias  # [query, dim]: the block's output before any post-norm
    if parts.norm is None:
        return Decomposition(t, u.astype(np.float32))
    g, mu = parts.norm.gamma, u.mean(axis=-1, keepdims=True)
    sigma = np.sqrt(((u - mu) ** 2).mean(axis=-1, keepdims=True) + parts.norm.eps)  # [query, 1]
    t -= t.mean(axis=-1, keepdims=True)
    t *= g / sigma[:, None, :]
    y = (u - mu) / sigma * g + parts.norm.beta
    return Decomposition(t, y.astype(np.float32))


def layer_contributions(parts: LayerParts, block_floats: int = BLOCK_FLOATS) -> np.ndarray:
    """ALTI's token-to-token contributions of one layer.

    Args:
        parts: the block's parts for one input.
        block_floats: how many floats of ``T_i(x_j)`` to hold at once (bounds the memory).
    Returns:
        ``[query, key]`` float32, non-negative, rows summing to 1: ``c_ij`` normalised per row. A row whose every
        ``c_ij`` is 0 (no input vector is closer to the output than nothing) keeps the token itself: ``[i, i] = 1``.
    """
    _check(parts)
    n, dim = parts.x.shape
    out = np.zeros((n, n), np.float32)
    step = max(1, block_floats // max(1, n * dim))
    for start in range(0, n, step):
        stop = min(n, start + step)
        d = decompose(parts, start, stop)
        dist = np.abs(d.vectors - d.output[:, None, :]).sum(axis=-1)  # [query, key]
        c = np.clip(np.abs(d.output).sum(axis=-1, keepdims=True) - dist, 0, None)
        out[start:stop, : c.shape[1]] = c
    sums = out.sum(axis=-1, keepdims=True)
    empty = sums[:, 0] <= 0
    if empty.any():
        log.warning("ALTI: %d rows with no positive contribution keep the token itself", int(empty.sum()))
        out[empty] = 0
        out[empty, np.flatnonzero(empty)] = 1
        sums[empty] = 1
    return out / sums


def alti_rollup(layers: np.ndarray) -> np.ndarray:
    """ALTI across layers: ``C_L ⋯ C_2 · C_1``, no identity added (each ``C_l`` already holds the residual).

    Args:
        layers: ``[layer, query, key]`` contributions from :func:`layer_contributions`.
    Returns:
        ``[query, key]`` float32, rows summing to 1: how much each input token makes up each output.
    Raises:
        ValueError: not ``[layer, query, key]`` with square layers, or not finite.
    """
    if layers.ndim != 3 or layers.shape[-1] != layers.shape[-2]:
        raise ValueError(f"ALTI roll-up needs [layer, query, key] contributions, got shape {layers.shape}")
    if not np.isfinite(layers).all():
        raise ValueError("contributions are not finite (NaN or inf)")
    r = np.eye(layers.shape[-1])
    for c in layers.astype(np.float64):
        r = c @ r
    return r.astype(np.float32)


def _check(parts: LayerParts) -> None:
    n_heads, n, n_keys = parts.weights.shape
    if n != n_keys or parts.x.shape[0] != n or parts.values.shape != (n_heads, n, parts.x.shape[1]) \
            or parts.bias.shape != (parts.x.shape[1],):
        raise ValueError(f"ALTI parts do not fit: x {parts.x.shape}, weights {parts.weights.shape}, values "
                         f"{parts.values.shape}, bias {parts.bias.shape}")
