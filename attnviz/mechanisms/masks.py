"""Masks and the numerically stable (masked) softmax.

A mask is bool ``[query, key]``: True where the query may attend the key. Masked scores become ``-inf`` before
the softmax, so their weight is exactly 0. A query whose every key is masked has no distribution at all: that is a
``ValueError`` with a message, never a row of NaN.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def causal_mask(n_query: int, n_key: int | None = None) -> np.ndarray:
    """Query ``i`` may attend keys ``0..i`` (top-left aligned, as ``torch``'s ``is_causal``).

    Returns:
        bool ``[query, key]``, lower-triangular with the diagonal.
    """
    n_key = n_query if n_key is None else n_key
    if n_query < 1 or n_key < 1:
        raise ValueError("A causal mask needs at least one query and one key.")
    return np.tril(np.ones((n_query, n_key), dtype=bool))


def padding_mask(n_query: int, padded: Iterable[int] | np.ndarray, n_key: int) -> np.ndarray:
    """Every query may attend every key except the padded ones.

    Args:
        n_query: number of queries.
        padded: indices of padded keys, or bool ``[key]`` True for padding.
        n_key: number of keys.
    Returns:
        bool ``[query, key]``.
    """
    pad = np.zeros(n_key, dtype=bool)
    p = np.asarray(list(padded) if not isinstance(padded, np.ndarray) else padded)
    if p.dtype == bool:
        if p.shape != (n_key,):
            raise ValueError(f"A bool padding vector needs one entry per key ({n_key}), got shape {p.shape}.")
        pad = p.copy()
    elif p.size:
        idx = p.astype(int)
        if idx.min() < 0 or idx.max() >= n_key:
            raise ValueError(f"Padded key indices must be in 0..{n_key - 1}, got {sorted(set(idx.tolist()))}.")
        pad[idx] = True
    return np.broadcast_to(~pad, (n_query, n_key)).copy()


def check_mask(mask: np.ndarray | None, n_query: int, n_key: int) -> np.ndarray | None:
    """``mask`` as bool ``[query, key]`` (or None); ``ValueError`` when its shape is wrong."""
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype != bool:
        raise ValueError(f"The mask must be bool (True = may attend), got dtype {m.dtype}.")
    if m.shape != (n_query, n_key):
        raise ValueError(f"The mask must be [query, key] = [{n_query}, {n_key}], got shape {list(m.shape)}.")
    return m


def apply_mask(scores: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Scores with ``-inf`` where the mask forbids attending. ``[query, key]`` -> ``[query, key]``.

    Raises:
        ValueError: a query row has every key masked.
    """
    s = np.asarray(scores, dtype=np.float64)
    if mask is None:
        return s.copy()
    m = check_mask(mask, *s.shape)
    empty = np.flatnonzero(~m.any(axis=-1))
    if empty.size:
        rows = ", ".join(str(i) for i in empty)
        which = f"Query row {rows} has" if empty.size == 1 else f"Query rows {rows} have"
        raise ValueError(f"{which} every key masked: a softmax over no keys is undefined. "
                         "Allow at least one key for every query (e.g. pad fewer keys).")
    return np.where(m, s, -np.inf)


def softmax(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax: ``exp(s - max s) / sum exp(s - max s)`` along ``axis`` (keys), float64.

    ``-inf`` entries get weight exactly 0. A slice that is all ``-inf`` (see :func:`apply_mask`) or empty raises
    ``ValueError``.
    """
    s, top = _shifted(scores, axis, "softmax")
    e = np.exp(s - top)
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log softmax``: ``s - max s - log(sum exp(s - max s))`` along ``axis``, float64; ``-inf`` stays ``-inf``.

    Unlike ``log(softmax(s))`` it stays finite where a weight underflows to 0 in float64 (a score gap above
    ~745), so a tiny weight can still be written, e.g. ``1.2e-400``.
    """
    s, top = _shifted(scores, axis, "log_softmax")
    return s - top - np.log(np.exp(s - top).sum(axis=axis, keepdims=True))


def _shifted(scores: np.ndarray, axis: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(scores as float64, their maximum along ``axis``); ``ValueError`` naming ``name`` for an empty or all
    ``-inf`` slice or inf/NaN."""
    s = np.asarray(scores, dtype=np.float64)
    top = np.max(s, axis=axis, keepdims=True, initial=-np.inf)  # -inf for an empty slice too
    if np.any(np.isneginf(top)):
        if s.shape[axis] == 0:
            raise ValueError(f"{name} needs at least one score, got shape {list(s.shape)}.")
        raise ValueError("Every score of a row is -inf (every key masked): a softmax over no keys is undefined.")
    if not np.all(np.isfinite(top)):
        raise ValueError("Scores must be finite numbers (got inf or NaN); check the inputs.")
    return s, top
