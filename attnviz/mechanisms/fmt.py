"""Numbers as people should read them: 4 significant digits, tiny values in scientific notation, never a
positive number printed as 0 and never a weight below 1 printed as 1.

Weights beyond float64 are written from their natural logs: ``1.234e-400`` (mantissa and exponent exact for the
log as given), ``e^(-3.000e+12)`` once the log is too large for its float64 value to fix a fourth digit, and
``1 - 8.757e-27`` for a weight that is 1 in float64 while other keys of its row still get some weight.

>>> format_number(0.21547)
'0.2155'
>>> format_number(2.0611536e-09)
'2.061e-09'
>>> format_number(32.0)
'32'
>>> format_number(0.9999546)
'0.99995'
>>> format_number(float("-inf"))
'-inf'
"""
from __future__ import annotations

import math
from decimal import ROUND_FLOOR, Decimal, localcontext

import numpy as np

SMALL = 1e-3
"""Below this magnitude (and not 0), numbers are written in scientific notation."""
LARGE = 1e5
"""At or above this magnitude, numbers are written in scientific notation."""
TINY = float(np.finfo(np.float64).tiny)
"""Smallest normal float64 (2.2e-308); below it a float64 keeps fewer than 4 significant digits."""
EXACT_LOG_UP_TO = 1e10
"""Up to this magnitude a float64 log (rounded to at most 1e-6 there) fixes 4 significant digits of its power; beyond
it :func:`format_exp` writes the power itself, ``e^(...)``."""
_LN10 = Decimal("2.30258509299404568401799145468436420760110148862877297603332790096757260967735248023599720508959830")


def format_number(x: float, digits: int = 4) -> str:
    """``x`` with ``digits`` significant digits.

    - exact 0 is ``"0"``; ``nan``, ``inf`` and ``-inf`` are written as such;
    - ``SMALL <= |x| < LARGE``: positional notation without trailing zeros (``32``, ``0.2155``, ``18.48``);
    - otherwise scientific notation (``2.061e-09``, ``-1.234e+05``): a tiny non-zero number never shows as 0;
    - a value that would round to ±1 but is not ±1 gets more digits (``0.99995``), up to 17.
    """
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    a = abs(x)
    if a < SMALL or a >= LARGE:
        return f"{x:.{digits - 1}e}"
    for d in range(digits, 18):
        s = f"{x:.{d}g}"
        if "e" in s:  # .g switched to exponent form (e.g. 99999.5 at 4 digits): write it positionally
            s = _positional(x, d)
        if abs(float(s)) != 1 or abs(x) == 1:
            return s
    return repr(x)


def _positional(x: float, digits: int) -> str:
    decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(x)))))
    s = f"{x:.{decimals}f}"
    return s.rstrip("0").rstrip(".") if "." in s else s


def format_matrix(m: np.ndarray, digits: int = 4) -> list[list[str]]:
    """Every entry of a 1-D or 2-D array formatted with :func:`format_number`; a 1-D array is one row."""
    a = np.asarray(m, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"format_matrix takes a vector or a matrix, got shape {a.shape}")
    return [[format_number(v, digits) for v in row] for row in a]


def format_vector(v: np.ndarray, digits: int = 4) -> str:
    """``[a, b, c]`` with each entry formatted."""
    return "[" + ", ".join(format_number(x, digits) for x in np.ravel(np.asarray(v, dtype=np.float64))) + "]"


def format_probability(p: float, log_p: float, digits: int = 4) -> str:
    """A softmax weight ``p`` given with its natural log ``log_p`` (see ``AttentionTrace.log_weights``).

    As :func:`format_number`, except that a weight below float64's normal range (``< 2.2e-308``: subnormal, with
    few digits left, or underflowed to 0) that is not masked (``log_p`` finite) is written from ``log_p``:
    ``1.234e-400``, never ``0``.
    """
    p, log_p = float(p), float(log_p)
    if p >= TINY or not math.isfinite(log_p):
        return format_number(p, digits)
    return format_exp(log_p, digits)


def format_exp(log_x: float, digits: int = 4) -> str:
    """``e^log_x`` written as a number, even beyond float64's range: ``format_exp(900.0)`` is ``'7.329e+390'``;
    beyond :data:`EXACT_LOG_UP_TO` as the power, ``'e^(-3.000e+12)'``."""
    log_x = float(log_x)
    if abs(log_x) < 700 or not math.isfinite(log_x):  # e^700 = 1.0e+304: a normal float64 either way
        return format_number(math.exp(log_x), digits)
    if abs(log_x) > EXACT_LOG_UP_TO:
        return f"e^({format_number(log_x, digits)})"
    with localcontext() as ctx:  # log10 in 100 digits: float64 division would already be off in the 4th digit
        ctx.prec = 100
        log10 = Decimal(log_x) / _LN10
        exp = int(log10.to_integral_value(rounding=ROUND_FLOOR))
        frac = float(log10 - exp)
    mant = f"{10 ** frac:.{digits - 1}f}"
    if float(mant) >= 10:  # rounding carried into the next power of ten
        exp += 1
        mant = f"{float(mant) / 10:.{digits - 1}f}"
    return f"{mant}e{exp:+03d}"


def one_minus(log_rest: np.ndarray, digits: int = 4) -> str:
    """A weight that is 1 in float64 although the other weights of its row (natural logs ``log_rest``, ``-inf``
    for masked keys) are not all 0: ``1 - 8.757e-27``, the rest summed from their logs."""
    rest = np.asarray(log_rest, dtype=np.float64)
    rest = rest[np.isfinite(rest)]
    if rest.size == 0:
        return "1"
    top = float(rest.max())
    return f"1 - {format_exp(top + math.log(math.fsum(np.exp(rest - top))), digits)}"


def format_probabilities(p: np.ndarray, log_p: np.ndarray, digits: int = 4) -> list[list[str]]:
    """:func:`format_probability` of every entry; ``p`` and ``log_p`` of the same shape (a vector is one row)."""
    a, b = np.atleast_2d(np.asarray(p, dtype=np.float64)), np.atleast_2d(np.asarray(log_p, dtype=np.float64))
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"weights {a.shape} and log weights {b.shape} must be the same vector or matrix")
    return [[one_minus(np.delete(lr, j), digits) if x == 1 else format_probability(x, y, digits)
             for j, (x, y) in enumerate(zip(r, lr, strict=True))] for r, lr in zip(a, b, strict=True)]


def latex_number(x: float, digits: int = 4) -> str:
    """A number for ``st.latex``: ``2.061 \\times 10^{-9}`` instead of ``2.061e-09``; ``-\\infty`` for -inf."""
    return latex_text(format_number(x, digits))


def latex_text(s: str) -> str:
    """A number already formatted (:func:`format_number`, :func:`format_probability`) written for ``st.latex``."""
    if s in ("inf", "-inf"):
        return s.replace("inf", r"\infty")
    if s.startswith("e^(") and s.endswith(")"):
        return rf"e^{{{latex_text(s[3:-1])}}}"
    if s.startswith("1 - "):
        return rf"1 - {latex_text(s[4:])}"
    if "e" in s:
        mant, exp = s.split("e")
        return rf"{mant} \times 10^{{{int(exp)}}}"
    return s
