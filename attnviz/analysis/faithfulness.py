"""Deletion and insertion curves (Petsiuk et al. 2018; the perturbation test of Chefer et al. 2021), numpy only.

An explanation ranks the input's units (tokens or patches). *Deletion* removes the most relevant units first and
records the target's probability after each step: a faithful ranking makes it fall fast (low area). *Insertion*
starts from an input with every unit removed and puts the most relevant back first: a faithful ranking makes it rise
fast (high area). How a unit is removed is the model's business (:mod:`attnviz.models.perturb`); this module only
builds the masks and measures the curves.

Area convention: the x axis is the fraction of units removed (deletion) or put back (insertion), from 0 to 1, with
the unperturbed input at x = 0 of deletion and the fully removed input at x = 0 of insertion; the area is
``np.trapezoid(y, x) * 100`` (Chefer et al.'s ``np.trapz(y, x) * 100``), in percentage points of probability, between
0 and 100.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODES = ("deletion", "insertion")


@dataclass
class Curve:
    """One method's curve for one input and target.

    Attributes:
        method: name of the explanation that ranked the units.
        mode: ``"deletion"`` or ``"insertion"``.
        fractions: ``[step]`` share of units removed (deletion) or present (insertion), 0 to 1.
        probabilities: ``[step]`` the target's probability at each step.
        auc: area under the curve, ``trapezoid(probabilities, fractions) * 100``.
    """

    method: str
    mode: str
    fractions: np.ndarray
    probabilities: np.ndarray
    auc: float


def ranking(scores: np.ndarray) -> np.ndarray:
    """Units from the most to the least relevant; equal scores keep their order of position.

    Args:
        scores: ``[unit]`` relevance of each unit.
    Returns:
        ``[unit]`` int64 indices.
    Raises:
        ValueError: scores not one-dimensional or not finite.
    """
    s = np.asarray(scores, np.float64)
    if s.ndim != 1 or not np.isfinite(s).all():
        raise ValueError(f"a ranking needs finite scores [unit], got shape {s.shape}")
    return np.argsort(-s, kind="stable")


def step_counts(n_units: int, max_steps: int | None = None) -> np.ndarray:
    """How many units are removed (or put back) at each step: every count ``0 .. n``, or ``max_steps + 1``
    evenly spaced counts from 0 to ``n`` when ``n`` is larger.

    Returns:
        ``[step]`` int64, increasing, first 0 and last ``n_units``.
    """
    if n_units < 1:
        raise ValueError("a curve needs at least one unit to remove")
    if max_steps is None or n_units <= max_steps:
        return np.arange(n_units + 1)
    return np.unique(np.rint(np.linspace(0, n_units, max_steps + 1)).astype(np.int64))


def present_masks(order: np.ndarray, counts: np.ndarray, mode: str) -> np.ndarray:
    """Which units are present at each step.

    Args:
        order: ``[unit]`` from :func:`ranking`.
        counts: ``[step]`` from :func:`step_counts`.
        mode: ``"deletion"`` (the first ``count`` units of ``order`` removed) or ``"insertion"`` (only they present).
    Returns:
        bool ``[step, unit]``, True where the unit is present.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    n = len(order)
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)  # rank[u]: place of unit u in the ranking
    first = rank[None, :] < np.asarray(counts)[:, None]  # [step, unit]: among the first ``count``
    return ~first if mode == "deletion" else first


def area(fractions: np.ndarray, probabilities: np.ndarray) -> float:
    """``trapezoid(probabilities, fractions) * 100``: the area under a curve in percentage points."""
    return float(np.trapezoid(np.asarray(probabilities, np.float64), np.asarray(fractions, np.float64)) * 100)


def curve(method: str, mode: str, counts: np.ndarray, n_units: int, probabilities: np.ndarray) -> Curve:
    """A :class:`Curve` from the step counts and the probabilities measured at each step."""
    fractions = np.asarray(counts, np.float64) / n_units
    p = np.asarray(probabilities, np.float64)
    if p.shape != fractions.shape:
        raise ValueError(f"{len(p)} probabilities for {len(fractions)} steps")
    return Curve(method, mode, fractions, p, area(fractions, p))


def best_method(curves: list[Curve], mode: str) -> str | None:
    """The method whose curve is most faithful: lowest area for deletion, highest for insertion (first of equals)."""
    mine = [c for c in curves if c.mode == mode]
    if not mine:
        return None
    key = (lambda c: c.auc) if mode == "deletion" else (lambda c: -c.auc)
    return min(mine, key=key).method


def curve_rows(curves: list[Curve]) -> list[dict]:
    """One row per point of every curve (``method, mode, step, fraction, probability, auc``), for a CSV."""
    return [{"method": c.method, "mode": c.mode, "step": i, "fraction": float(x), "probability": float(y),
             "auc": c.auc} for c in curves for i, (x, y) in enumerate(zip(c.fractions, c.probabilities, strict=True))]
