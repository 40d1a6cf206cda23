"""Inputs of the mechanisms lab: presets, and reading a matrix a person edited (with messages, not tracebacks)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Preset:
    """A small example: queries ``Q [query, d_k]``, keys ``K [key, d_k]``, values ``V [key, d_v]``."""

    name: str
    description: str
    Q: np.ndarray
    K: np.ndarray
    V: np.ndarray


CLASSIC = Preset(
    "classic", "the classic example: one query [1, 2, 3], three keys and values counting up",
    np.array([[1.0, 2.0, 3.0]]),
    np.array([[4.0, 5.0, 6.0], [7.0, 8.0, 9.0], [10.0, 11.0, 12.0]]),
    np.array([[13.0, 14.0, 15.0], [16.0, 17.0, 18.0], [19.0, 20.0, 21.0]]),
)

TUTORIAL = Preset(
    "softmax of 31, 41, 51", "a query that makes the dot scores 31, 41 and 51: "
    "their softmax is [2.061e-09, 4.540e-05, 0.99995], not [0.215, 0.366, 0.419]",
    np.array([[1.0, 0.0]]),
    np.array([[31.0, 1.0], [41.0, 2.0], [51.0, 3.0]]),
    np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
)


def random_preset(seed: int = 0, n_query: int = 3, n_key: int = 4, d_k: int = 4, d_v: int = 4) -> Preset:
    """Seeded random inputs (standard normal, rounded to 2 decimals so they are easy to read and edit)."""
    rng = np.random.default_rng(seed)

    def draw(*shape: int) -> np.ndarray:
        return np.round(rng.normal(size=shape), 2)

    return Preset("random", f"random numbers (seed {seed})", draw(n_query, d_k), draw(n_key, d_k), draw(n_key, d_v))


def read_matrix(data: object, name: str) -> np.ndarray:
    """A matrix typed by a person (DataFrame, nested lists or array) as float64 ``[rows, cols]``.

    Raises:
        ValueError: saying which cell is empty, not a number, NaN or infinite, or that the table is empty or
            ragged (rows and columns are counted from 1, as a person reads the table).
    """
    rows = _rows(data)
    if not rows or not any(len(r) for r in rows):
        raise ValueError(f"{name} is empty: give it at least one row of numbers.")
    width = len(rows[0])
    for i, r in enumerate(rows, 1):
        if len(r) != width:
            raise ValueError(f"{name} row {i} has {len(r)} entries but row 1 has {width}: rows must be equally long.")
    out = np.empty((len(rows), width), dtype=np.float64)
    for i, r in enumerate(rows):
        for j, cell in enumerate(r):
            out[i, j] = _number(cell, f"{name} row {i + 1}, column {j + 1}")
    return out


def _rows(data: object) -> list[list[object]]:
    if hasattr(data, "to_numpy") and hasattr(data, "columns"):  # a pandas DataFrame, without importing pandas
        return [list(r) for r in data.to_numpy(dtype=object)]
    if isinstance(data, np.ndarray):
        a = data if data.ndim == 2 else np.atleast_2d(data)
        return [list(r) for r in a.tolist()]
    if isinstance(data, (list, tuple)):
        if data and not isinstance(data[0], (list, tuple, np.ndarray)):
            return [list(data)]
        return [list(r) for r in data]
    raise ValueError(f"Expected a table of numbers, got {type(data).__name__}.")


def _number(cell: object, where: str) -> float:
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        raise ValueError(f"{where} is empty: type a number.")
    if isinstance(cell, bool):
        raise ValueError(f"{where} is {cell}, not a number.")
    try:
        x = float(cell.strip() if isinstance(cell, str) else cell)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{where} is {str(cell)[:20]!r}, not a number.") from None
    if math.isnan(x):
        raise ValueError(f"{where} is empty or not a number (NaN): type a number.")
    if math.isinf(x):
        raise ValueError(f"{where} is infinite: type a finite number.")
    return x
