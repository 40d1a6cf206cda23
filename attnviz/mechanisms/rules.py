"""The scoring rules of attention, one function each, every intermediate kept in an :class:`AttentionTrace`.

Dimensions (named once; rows are queries, columns are keys, as everywhere in attnviz):

- ``query``: rows of ``Q``, the positions that attend;
- ``key``: rows of ``K`` and ``V``, the positions attended to;
- ``d_q``, ``d_k``: widths of a query and a key (equal for ``dot`` and ``scaled_dot``);
- ``d_v``: width of a value (and of the context).

The pipeline is the same for every rule: scores ``[query, key]`` -> scaled scores -> masked scores (``-inf`` where
not allowed) -> softmax over keys -> weights ``[query, key]`` -> context ``weights @ V`` ``[query, d_v]``.
All numbers are float64.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from attnviz.mechanisms.masks import apply_mask, check_mask, log_softmax, softmax
from attnviz.mechanisms.params import check_params, check_rule, default_params

RULE_NAMES = {
    "dot": "dot-product (Luong)",
    "scaled_dot": "scaled dot-product (Vaswani et al.)",
    "general": "general / bilinear (Luong)",
    "additive": "additive (Bahdanau)",
    "mlp": "MLP-scored",
}


@dataclass(frozen=True)
class AttentionTrace:
    """Every intermediate of one attention computation (float64). See :attr:`SHAPES` for the dimensions."""

    rule: str                   # "dot", "scaled_dot", "general", "additive" or "mlp"
    Q: np.ndarray               # [query, d_q]
    K: np.ndarray               # [key, d_k]
    V: np.ndarray               # [key, d_v]
    scores: np.ndarray          # [query, key] raw compatibility of each query with each key
    scale: float                # scaled_scores = scores * scale (1/sqrt(d_k) for scaled_dot, else 1)
    scaled_scores: np.ndarray   # [query, key]
    mask: np.ndarray | None     # [query, key] bool, True = may attend; None = everything allowed
    masked_scores: np.ndarray   # [query, key], -inf where the mask forbids
    weights: np.ndarray         # [query, key], rows sum to 1
    log_weights: np.ndarray     # [query, key], log of weights; finite where a weight underflowed to 0
    context: np.ndarray         # [query, d_v] = weights @ V
    params: dict[str, np.ndarray] = field(default_factory=dict)  # learned matrices of the rule
    steps: dict[str, np.ndarray] = field(default_factory=dict)   # rule-specific intermediates (see SHAPES)

    SHAPES: ClassVar[dict[str, tuple[str, ...]]] = {
        "Q": ("query", "d_q"), "K": ("key", "d_k"), "V": ("key", "d_v"),
        "scores": ("query", "key"), "scaled_scores": ("query", "key"), "mask": ("query", "key"),
        "masked_scores": ("query", "key"), "weights": ("query", "key"), "log_weights": ("query", "key"),
        "context": ("query", "d_v"),
        # additive: W_q q for every query, W_k k for every key, and tanh of their sums
        "query_proj": ("query", "d_a"), "key_proj": ("key", "d_a"), "hidden": ("query", "key", "d_hidden"),
        # mlp: the concatenated pairs [q; k]
        "pairs": ("query", "key", "d_q + d_k"),
    }

    def shape_of(self, name: str) -> str:
        """``"[query=1, key=3]"``: the named dimensions of an intermediate with their sizes."""
        arr = getattr(self, name, None)
        if arr is None:
            arr = self.steps[name]
        dims = self.SHAPES[name]
        return "[" + ", ".join(f"{d}={n}" for d, n in zip(dims, np.shape(arr), strict=True)) + "]"

    @property
    def n_query(self) -> int:
        return int(self.Q.shape[0])

    @property
    def n_key(self) -> int:
        return int(self.K.shape[0])


def as_matrix(x: object, name: str) -> np.ndarray:
    """``x`` as a float64 ``[rows, cols]`` array (a vector is one row); ``ValueError`` for anything else."""
    try:
        a = np.array(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a matrix of numbers: {e}") from e
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty matrix [rows, columns], got shape {list(a.shape)}.")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} holds NaN or infinite values: give finite numbers.")
    return a


def check_qkv(Q: object, K: object, V: object, same_width: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate shapes: ``Q [query, d_q]``, ``K [key, d_k]``, ``V [key, d_v]``; ``d_q == d_k`` if ``same_width``."""
    q, k, v = as_matrix(Q, "Q"), as_matrix(K, "K"), as_matrix(V, "V")
    if k.shape[0] != v.shape[0]:
        raise ValueError(f"K has {k.shape[0]} rows (keys) but V has {v.shape[0]}: every key needs exactly one value.")
    if same_width and q.shape[1] != k.shape[1]:
        raise ValueError(f"This rule compares q and k entry by entry, so they need the same width: Q has "
                         f"{q.shape[1]} columns, K has {k.shape[1]}. (The general, additive and MLP rules allow "
                         "different widths.)")
    return q, k, v


def _finish(rule: str, q: np.ndarray, k: np.ndarray, v: np.ndarray, scores: np.ndarray, scale: float,
            mask: np.ndarray | None, params: dict, steps: dict) -> AttentionTrace:
    """Scale, mask, softmax and mix the values: the part every rule shares."""
    mask = check_mask(mask, q.shape[0], k.shape[0])
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"The {RULE_NAMES[rule]} scores overflowed to infinity: float64 holds numbers up to about "
                         "1.8e308, and these inputs multiply past it. Use smaller numbers in Q and K.")
    scaled = scores * scale
    masked = apply_mask(scaled, mask)
    weights = softmax(masked, axis=-1)
    context = weights @ v
    return AttentionTrace(rule, q, k, v, scores, scale, scaled, mask, masked, weights, log_softmax(masked, axis=-1),
                          context, params, steps)


def dot_product(Q: object, K: object, V: object, mask: np.ndarray | None = None) -> AttentionTrace:
    """Luong's dot score ``s_ij = q_i · k_j``. ``Q [query, d]``, ``K [key, d]``, ``V [key, d_v]``."""
    q, k, v = check_qkv(Q, K, V, same_width=True)
    return _finish("dot", q, k, v, q @ k.T, 1.0, mask, {}, {})


def scaled_dot_product(Q: object, K: object, V: object, mask: np.ndarray | None = None) -> AttentionTrace:
    """``s_ij = q_i · k_j / sqrt(d_k)`` (Vaswani et al. 2017); ``scores`` holds the unscaled dot products."""
    q, k, v = check_qkv(Q, K, V, same_width=True)
    return _finish("scaled_dot", q, k, v, q @ k.T, 1.0 / np.sqrt(k.shape[1]), mask, {}, {})


def general(Q: object, K: object, V: object, mask: np.ndarray | None = None,
            params: dict[str, np.ndarray] | None = None, seed: int = 0) -> AttentionTrace:
    """Luong's general (bilinear) score ``s_ij = q_iᵀ W k_j``, ``W [d_q, d_k]`` (seeded random if not given)."""
    q, k, v = check_qkv(Q, K, V, same_width=False)
    p = _params("general", params, q, k, seed)
    return _finish("general", q, k, v, q @ p["W"] @ k.T, 1.0, mask, p, {})


def additive(Q: object, K: object, V: object, mask: np.ndarray | None = None,
             params: dict[str, np.ndarray] | None = None, seed: int = 0) -> AttentionTrace:
    """Bahdanau's additive score ``s_ij = vᵀ tanh(W_q q_i + W_k k_j)``.

    Params: ``W_q [d_a, d_q]``, ``W_k [d_a, d_k]``, ``v [d_a]``. Steps kept: ``query_proj [query, d_a]``,
    ``key_proj [key, d_a]``, ``hidden [query, key, d_a]`` (the tanh).
    """
    q, k, v = check_qkv(Q, K, V, same_width=False)
    p = _params("additive", params, q, k, seed)
    query_proj = q @ p["W_q"].T                                      # [query, d_a]
    key_proj = k @ p["W_k"].T                                        # [key, d_a]
    hidden = np.tanh(query_proj[:, None, :] + key_proj[None, :, :])  # [query, key, d_a]
    scores = hidden @ p["v"]                                         # [query, key]
    steps = {"query_proj": query_proj, "key_proj": key_proj, "hidden": hidden}
    return _finish("additive", q, k, v, scores, 1.0, mask, p, steps)


def mlp_scored(Q: object, K: object, V: object, mask: np.ndarray | None = None,
               params: dict[str, np.ndarray] | None = None, seed: int = 0) -> AttentionTrace:
    """A one-hidden-layer MLP scores each pair: ``s_ij = w_2ᵀ ReLU(W_1 [q_i; k_j] + b_1) + b_2``.

    Params: ``W_1 [d_h, d_q + d_k]``, ``b_1 [d_h]``, ``w_2 [d_h]``, ``b_2 []``. Steps kept:
    ``pairs [query, key, d_q + d_k]``, ``hidden [query, key, d_h]`` (after the ReLU).
    """
    q, k, v = check_qkv(Q, K, V, same_width=False)
    p = _params("mlp", params, q, k, seed)
    nq, nk = q.shape[0], k.shape[0]
    pairs = np.concatenate([np.repeat(q[:, None, :], nk, axis=1), np.repeat(k[None, :, :], nq, axis=0)], axis=-1)
    hidden = np.maximum(pairs @ p["W_1"].T + p["b_1"], 0.0)          # [query, key, d_h]
    scores = hidden @ p["w_2"] + p["b_2"]                            # [query, key]
    return _finish("mlp", q, k, v, scores, 1.0, mask, p, {"pairs": pairs, "hidden": hidden})


def _params(rule: str, params: dict | None, q: np.ndarray, k: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    d_q, d_k = q.shape[1], k.shape[1]
    if params is None:
        return default_params(rule, d_q, d_k, seed=seed)
    return check_params(rule, params, d_q, d_k)


RULES = {"dot": dot_product, "scaled_dot": scaled_dot_product, "general": general, "additive": additive,
         "mlp": mlp_scored}


def attention(Q: object, K: object, V: object, score: str = "scaled_dot", mask: np.ndarray | None = None,
              params: dict[str, np.ndarray] | None = None, seed: int = 0) -> AttentionTrace:
    """Attention of queries ``Q`` over keys ``K`` with values ``V``, with every step kept.

    Args:
        Q: ``[query, d_q]`` (a vector is one query).
        K: ``[key, d_k]``.
        V: ``[key, d_v]``.
        score: ``"dot"``, ``"scaled_dot"``, ``"general"``, ``"additive"`` or ``"mlp"``.
        mask: bool ``[query, key]``, True where attending is allowed (see :mod:`attnviz.mechanisms.masks`).
        params: learned parameters of ``general``/``additive``/``mlp`` (shapes in
            :mod:`attnviz.mechanisms.params`); seeded random ones (``seed``) when omitted.
    Returns:
        :class:`AttentionTrace` with ``scores``, ``scaled_scores``, ``masked_scores``, ``weights [query, key]``
        and ``context [query, d_v]``.
    Raises:
        ValueError: unknown rule, wrong shapes, non-finite numbers, scores that overflow float64, parameters for
            a rule without any, or a query with every key masked.
    """
    fn = RULES[check_rule(score)]
    if score in ("dot", "scaled_dot") and params:
        raise ValueError(f"The {score} rule has no parameters; got {', '.join(params)}.")
    with np.errstate(over="ignore", invalid="ignore"):  # overflowing scores are reported as a ValueError
        if score in ("dot", "scaled_dot"):
            return fn(Q, K, V, mask)
        return fn(Q, K, V, mask, params=params, seed=seed)
