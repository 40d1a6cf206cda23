"""Learned parameters of the scoring rules that have them, their shapes, and seeded random defaults.

Shapes (column-vector convention, as in the formulas; ``d_q``/``d_k`` are the widths of a query/key):

==========  ====================================================================  ===============================
rule        parameters                                                            score of query q and key k
==========  ====================================================================  ===============================
general     ``W [d_q, d_k]``                                                      ``qᵀ W k``
additive    ``W_q [d_a, d_q]``, ``W_k [d_a, d_k]``, ``v [d_a]``                   ``vᵀ tanh(W_q q + W_k k)``
mlp         ``W_1 [d_h, d_q + d_k]``, ``b_1 [d_h]``, ``w_2 [d_h]``, ``b_2 []``    ``w_2ᵀ ReLU(W_1 [q; k] + b_1) + b_2``
==========  ====================================================================  ===============================

``dot`` and ``scaled_dot`` have no parameters.
"""
from __future__ import annotations

import numpy as np

RULES = ("dot", "scaled_dot", "general", "additive", "mlp")

PARAM_NAMES: dict[str, tuple[str, ...]] = {
    "dot": (), "scaled_dot": (), "general": ("W",), "additive": ("W_q", "W_k", "v"),
    "mlp": ("W_1", "b_1", "w_2", "b_2"),
}


def param_shapes(rule: str, d_q: int, d_k: int, d_hidden: int) -> dict[str, tuple[int, ...]]:
    """Expected shape of every parameter of ``rule`` (``d_hidden`` is ``d_a`` or ``d_h``)."""
    check_rule(rule)
    return {
        "dot": {}, "scaled_dot": {},
        "general": {"W": (d_q, d_k)},
        "additive": {"W_q": (d_hidden, d_q), "W_k": (d_hidden, d_k), "v": (d_hidden,)},
        "mlp": {"W_1": (d_hidden, d_q + d_k), "b_1": (d_hidden,), "w_2": (d_hidden,), "b_2": ()},
    }[rule]


def check_rule(rule: str) -> str:
    if rule not in RULES:
        raise ValueError(f"Unknown scoring rule {rule!r}; choose one of {', '.join(RULES)}.")
    return rule


def default_hidden(rule: str, d_q: int, d_k: int) -> int:
    """Hidden width used when none is given: ``d_a = d_k`` (additive), ``d_h = d_q + d_k`` (mlp)."""
    return d_k if rule == "additive" else d_q + d_k if rule == "mlp" else 0


def default_params(rule: str, d_q: int, d_k: int, seed: int = 0, d_hidden: int | None = None) -> dict[str, np.ndarray]:
    """Seeded random parameters (float64, normal with variance 1/fan-in), standing in for learned ones.

    Returns:
        ``{name: array}`` with the shapes of :func:`param_shapes`; empty for ``dot``/``scaled_dot``.
    """
    d_hidden = d_hidden or default_hidden(rule, d_q, d_k)
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in param_shapes(rule, d_q, d_k, d_hidden).items():
        fan_in = shape[-1] if shape else 1
        out[name] = rng.normal(0.0, 1.0 / np.sqrt(fan_in), size=shape)
    return out


def check_params(rule: str, params: dict[str, np.ndarray], d_q: int, d_k: int) -> dict[str, np.ndarray]:
    """``params`` as float64 arrays with the right shapes; ``ValueError`` naming what is missing or wrong."""
    names = PARAM_NAMES[check_rule(rule)]
    missing = [n for n in names if n not in params]
    if missing:
        raise ValueError(f"The {rule} rule needs parameters {', '.join(names)}; missing {', '.join(missing)}.")
    p = {n: np.asarray(params[n], dtype=np.float64) for n in names}
    first = p[names[0]] if names else None
    d_hidden = first.shape[0] if first is not None and first.ndim == 2 and rule != "general" else 0
    for name, shape in param_shapes(rule, d_q, d_k, d_hidden).items():
        if p[name].shape != shape:
            raise ValueError(f"Parameter {name} of the {rule} rule must have shape {list(shape)} "
                             f"(d_q={d_q}, d_k={d_k}), got {list(p[name].shape)}.")
        if not np.all(np.isfinite(p[name])):
            raise ValueError(f"Parameter {name} must hold finite numbers.")
    return p
