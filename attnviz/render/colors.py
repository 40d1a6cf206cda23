"""Colour scales shared by the raster images and the Plotly figures (one name, same colours)."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from plotly.colors import get_colorscale, hex_to_rgb, unlabel_rgb

COLORSCALES = ("Viridis", "Magma", "Blues", "Greys", "Inferno", "Cividis", "YlOrRd")
DEFAULT_COLORSCALE = "Viridis"
MASKED_COLOR = "#e4e4e4"
"""Colour of masked cells (keys a query cannot see) in every heatmap: figures, images and the mechanisms' SVG."""
MASKED_RGB = np.array(hex_to_rgb(MASKED_COLOR), dtype=np.uint8)
DIVERGING_COLORSCALE = "RdBu_r"
"""Signed matrices (differences of attention): blue below 0, white at 0, red above."""


def symmetric_max(matrix: np.ndarray, masked: np.ndarray | None = None) -> float:
    """The colour range ``[-r, r]`` of a signed matrix: ``r`` is its largest absolute value outside ``masked``
    (a tiny positive number when that is 0, so that 0 stays the middle colour)."""
    m = np.abs(np.asarray(matrix, dtype=np.float32))
    free = m if masked is None else m[~np.asarray(masked, bool)]
    return max(float(free.max()) if free.size else 0.0, 1e-6)


@lru_cache(maxsize=32)
def lut(name: str, levels: int = 256) -> np.ndarray:
    """Lookup table ``[levels, 3]`` uint8 for a Plotly colour scale name (0 → first colour, ``levels - 1`` → last)."""
    try:
        scale = get_colorscale(name)
    except Exception as e:  # plotly raises PlotlyError for unknown names
        raise ValueError(f"Unknown colour scale {name!r}; choose one of {COLORSCALES}") from e
    stops = np.array([s for s, _ in scale], dtype=float)
    rgb = np.array([hex_to_rgb(c) if c.startswith("#") else unlabel_rgb(c) for _, c in scale], dtype=float)
    x = np.linspace(0, 1, levels)
    table = np.stack([np.interp(x, stops, rgb[:, i]) for i in range(3)], axis=1)
    return np.clip(np.round(table), 0, 255).astype(np.uint8)


def colour_index(matrix: np.ndarray, vmax: float | np.ndarray | None = None, levels: int = 256) -> np.ndarray:
    """Map values in ``[0, vmax]`` to lookup-table indices ``0 .. levels - 1`` (uint8, same shape). ``vmax``: the
    max by default, or an array that broadcasts against ``matrix`` (e.g. one maximum per head); where it is 0 or
    less, index 0."""
    m = np.asarray(matrix, dtype=np.float32)
    top = np.asarray(m.max() if vmax is None else vmax, dtype=np.float32)
    safe = np.where(top > 0, top, np.float32(1))
    idx = np.clip(m / safe * (levels - 1) + 0.5, 0, levels - 1).astype(np.uint8)
    return np.where(top > 0, idx, np.uint8(0))


def colorize(matrix: np.ndarray, name: str = DEFAULT_COLORSCALE, vmax: float | np.ndarray | None = None,
             levels: int = 256) -> np.ndarray:
    """Map values in ``[0, vmax]`` to RGB ``[..., 3]`` uint8 through ``levels`` colours of the scale ``name``
    (``vmax`` as :func:`colour_index`)."""
    return lut(name, levels)[colour_index(matrix, vmax, levels)]
