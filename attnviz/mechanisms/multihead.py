"""Multi-head attention, each step visible: project, split into heads, attend per head, concatenate, project.

Row-vector convention of Vaswani et al. (2017): ``head_h = Attention(Q W_q[:, h], K W_k[:, h], V W_v[:, h])``,
``output = Concat(head_0, ..., head_{H-1}) W_o``, where ``W[:, h]`` is the ``h``-th block of ``d / H`` columns.

Dimensions: ``head`` (H), ``query``, ``key``, ``d`` (width of queries and keys), ``d_head = d / H``,
``d_v`` (width of values and of the output), ``d_v_head = d_v / H``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from attnviz.mechanisms.rules import AttentionTrace, as_matrix, attention

PROJECTIONS = ("W_q", "W_k", "W_v", "W_o")


@dataclass(frozen=True)
class MultiHeadTrace:
    """Every step of multi-head attention (float64)."""

    Q: np.ndarray               # [query, d]
    K: np.ndarray               # [key, d]
    V: np.ndarray               # [key, d_v]
    params: dict[str, np.ndarray]   # W_q [d, d], W_k [d, d], W_v [d_v, d_v], W_o [d_v, d_v]
    Q_proj: np.ndarray          # [query, d]    = Q W_q
    K_proj: np.ndarray          # [key, d]      = K W_k
    V_proj: np.ndarray          # [key, d_v]    = V W_v
    Q_heads: np.ndarray         # [head, query, d_head]
    K_heads: np.ndarray         # [head, key, d_head]
    V_heads: np.ndarray         # [head, key, d_v_head]
    heads: list[AttentionTrace]     # one full trace per head
    concat: np.ndarray          # [query, d_v]  the heads' contexts side by side
    output: np.ndarray          # [query, d_v]  = concat W_o

    SHAPES: ClassVar[dict[str, tuple[str, ...]]] = {
        "Q_proj": ("query", "d"), "K_proj": ("key", "d"), "V_proj": ("key", "d_v"),
        "Q_heads": ("head", "query", "d_head"), "K_heads": ("head", "key", "d_head"),
        "V_heads": ("head", "key", "d_v_head"), "weights": ("head", "query", "key"),
        "concat": ("query", "d_v"), "output": ("query", "d_v"),
    }

    @property
    def n_heads(self) -> int:
        return len(self.heads)

    @property
    def weights(self) -> np.ndarray:
        """``[head, query, key]``."""
        return np.stack([h.weights for h in self.heads])


def split_heads(x: np.ndarray, n_heads: int, name: str = "the matrix") -> np.ndarray:
    """``[n, d]`` -> ``[head, n, d / head]``: head ``h`` takes columns ``h*d/H .. (h+1)*d/H - 1``."""
    n, d = x.shape
    if n_heads < 1:
        raise ValueError(f"The number of heads must be at least 1, got {n_heads}.")
    if d % n_heads:
        divisors = [h for h in range(1, d + 1) if d % h == 0]
        raise ValueError(f"The width of {name} ({d}) is not divisible by {n_heads} heads: each head takes an "
                         f"equal share of the columns. Choose {_either(divisors)} heads.")
    return x.reshape(n, n_heads, d // n_heads).transpose(1, 0, 2)


def _either(items: list[int]) -> str:
    """``[1, 2, 4]`` -> ``"1, 2 or 4"``."""
    words = [str(i) for i in items]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def merge_heads(x: np.ndarray) -> np.ndarray:
    """``[head, n, d_head]`` -> ``[n, head * d_head]`` (inverse of :func:`split_heads`)."""
    h, n, dh = x.shape
    return x.transpose(1, 0, 2).reshape(n, h * dh)


def identity_projections(d: int, d_v: int) -> dict[str, np.ndarray]:
    """Projections that change nothing: the heads see slices of ``Q``, ``K`` and ``V`` themselves."""
    return {"W_q": np.eye(d), "W_k": np.eye(d), "W_v": np.eye(d_v), "W_o": np.eye(d_v)}


def random_projections(d: int, d_v: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded random projections (normal, variance 1/fan-in), standing in for learned ones; widths of at least 1."""
    if d < 1 or d_v < 1:
        raise ValueError(f"Projections need widths of at least 1, got d={d} and d_v={d_v}.")
    rng = np.random.default_rng(seed)
    return {"W_q": rng.normal(0, d ** -0.5, (d, d)), "W_k": rng.normal(0, d ** -0.5, (d, d)),
            "W_v": rng.normal(0, d_v ** -0.5, (d_v, d_v)), "W_o": rng.normal(0, d_v ** -0.5, (d_v, d_v))}


def multi_head_attention(Q: object, K: object, V: object, n_heads: int, score: str = "scaled_dot",
                         mask: np.ndarray | None = None, params: dict[str, np.ndarray] | None = None,
                         head_params: list[dict[str, np.ndarray]] | None = None, seed: int = 0) -> MultiHeadTrace:
    """Multi-head attention with every step kept.

    Args:
        Q: ``[query, d]``; K: ``[key, d]``; V: ``[key, d_v]``; ``d`` and ``d_v`` divisible by ``n_heads``.
        n_heads: number of heads H.
        score: scoring rule used inside every head (see :func:`attnviz.mechanisms.attention`).
        mask: bool ``[query, key]``, shared by all heads.
        params: ``W_q [d, d]``, ``W_k [d, d]``, ``W_v [d_v, d_v]``, ``W_o [d_v, d_v]``; seeded random when omitted
            (:func:`identity_projections` shows the bare split).
        head_params: per head, the rule's own parameters (seeded random, seed ``seed + h``, when omitted: so
            one head with identity projections is exactly ``attention(Q, K, V, score, mask, seed=seed)``).
    Returns:
        :class:`MultiHeadTrace`; ``output [query, d_v]``.
    Raises:
        ValueError: widths not divisible by ``n_heads``, wrong shapes, or a fully masked query.
    """
    q, k, v = as_matrix(Q, "Q"), as_matrix(K, "K"), as_matrix(V, "V")
    if q.shape[1] != k.shape[1]:
        raise ValueError(f"Multi-head attention projects Q and K to the same width: Q has {q.shape[1]} columns, "
                         f"K has {k.shape[1]}.")
    d, d_v = q.shape[1], v.shape[1]
    p = random_projections(d, d_v, seed) if params is None else _check_projections(params, d, d_v)
    q_proj, k_proj, v_proj = project(q, k, v, p)
    q_heads = split_heads(q_proj, n_heads, "Q and K")
    k_heads = split_heads(k_proj, n_heads, "Q and K")
    v_heads = split_heads(v_proj, n_heads, "V")
    if head_params is not None and len(head_params) != n_heads:
        raise ValueError(f"head_params has {len(head_params)} entries for {n_heads} heads.")
    traces = [attention(q_heads[h], k_heads[h], v_heads[h], score=score, mask=mask,
                        params=None if head_params is None else head_params[h], seed=seed + h)
              for h in range(n_heads)]
    concat = merge_heads(np.stack([t.context for t in traces]))
    return MultiHeadTrace(q, k, v, p, q_proj, k_proj, v_proj, q_heads, k_heads, v_heads, traces, concat,
                          _finite("C W_o", concat @ p["W_o"]))


def project(Q: np.ndarray, K: np.ndarray, V: np.ndarray,
            params: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first step of multi-head attention, before any split: ``Q W_q``, ``K W_k``, ``V W_v``.

    Raises:
        ValueError: a product overflowed float64 (inputs near 1e308).
    """
    return (_finite("Q W_q", Q @ params["W_q"]), _finite("K W_k", K @ params["W_k"]),
            _finite("V W_v", V @ params["W_v"]))


def _finite(name: str, product: np.ndarray) -> np.ndarray:
    """``product`` (of finite inputs), or a ``ValueError`` saying that ``name`` overflowed."""
    if not np.all(np.isfinite(product)):
        raise ValueError(f"The projection {name} overflowed to infinity: float64 holds numbers up to about 1.8e308, "
                         "and these inputs multiply past it. Use smaller numbers.")
    return product


def _check_projections(params: dict[str, np.ndarray], d: int, d_v: int) -> dict[str, np.ndarray]:
    want = {"W_q": (d, d), "W_k": (d, d), "W_v": (d_v, d_v), "W_o": (d_v, d_v)}
    out = {}
    for name, shape in want.items():
        if name not in params:
            raise ValueError(f"Multi-head attention needs projections {', '.join(want)}; {name} is missing.")
        out[name] = np.asarray(params[name], dtype=np.float64)
        if out[name].shape != shape:
            raise ValueError(f"{name} must have shape {list(shape)}, got {list(out[name].shape)}.")
    return out
