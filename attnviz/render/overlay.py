"""Attention over image patches drawn on the picture (Pillow + numpy): single overlays, raw heatmaps and one
composite image of many overlays (e.g. every layer x head), sent to the browser as one PNG.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from attnviz.render.colors import DEFAULT_COLORSCALE, colorize, colour_index, lut
from attnviz.render.raster import INK, font, tile


def fit_size(size: tuple[int, int], longest: int) -> tuple[int, int]:
    """``(width, height)`` scaled so that the longer side is ``longest`` pixels (aspect kept)."""
    w, h = size
    s = longest / max(w, h)
    return max(1, round(w * s)), max(1, round(h * s))


def upsample(patch_map: np.ndarray, size: tuple[int, int], smooth: bool = False) -> np.ndarray:
    """A ``[rows, cols]`` map stretched to ``size`` = ``(width, height)`` pixels, ``[height, width]`` float32,
    as Pillow resizes it.

    ``smooth=False`` keeps one flat block per patch (what the model computed); ``True`` interpolates bilinearly
    between patch centres.
    """
    return upsample_all(patch_map, size, smooth)


@lru_cache(maxsize=64)
def resample_matrix(n: int, size: int, smooth: bool = False) -> np.ndarray:
    """``[size, n]`` float32: how :func:`upsample` stretches ``n`` samples along one axis to ``size`` pixels
    (column ``k`` is Pillow's resize of the ``k``-th unit vector; Pillow resamples each axis separately)."""
    method = Image.Resampling.BILINEAR if smooth else Image.Resampling.NEAREST
    eye = np.eye(n, dtype=np.float32)
    return np.stack([np.asarray(Image.fromarray(eye[k:k + 1], "F").resize((size, 1), method), np.float32)[0]
                     for k in range(n)], axis=1)


@lru_cache(maxsize=64)
def nearest_index(n: int, size: int) -> np.ndarray | None:
    """``[size]``: the sample of ``n`` that each of ``size`` pixels shows in Pillow's nearest resize (the 1 in
    each row of :func:`resample_matrix`); None if a row of it is not a single 1."""
    m = resample_matrix(n, size, False)
    index = m.argmax(axis=1)
    return index if np.array_equal(m, np.eye(n, dtype=np.float32)[index]) else None


def upsample_all(maps: np.ndarray, size: tuple[int, int], smooth: bool = False) -> np.ndarray:
    """:func:`upsample` of every ``[rows, cols]`` map in ``maps[..., rows, cols]`` at once: ``[..., height, width]``
    (instead of a Pillow resize per map; see :func:`overlay_grid`). Flat blocks are an index into each map (the
    values themselves, as the product with the 0/1 :func:`resample_matrix` gives them, but no matrix product:
    numpy's BLAS splits each of a grid's 2 x 72 small products over its threads, which under load on 2 cores took
    up to seconds); smooth maps are two matrix products with :func:`resample_matrix`."""
    rows, cols = maps.shape[-2:]
    w, h = size
    m = np.asarray(maps, np.float32)
    ys, xs = (None, None) if smooth else (nearest_index(rows, h), nearest_index(cols, w))
    if ys is not None and xs is not None:
        return m[..., ys[:, None], xs]
    return resample_matrix(rows, h, smooth) @ m @ resample_matrix(cols, w, smooth).T


def color_tops(maps: np.ndarray, ceiling: float = 100.0) -> np.ndarray:
    """Top of the colour scale of each ``[rows, cols]`` map in ``maps[..., rows, cols]``: its ``ceiling``-th
    percentile (100 = its maximum), shape ``[..., 1, 1]``.

    A ceiling below 100 keeps a few outlier patches (e.g. DINOv2's high-norm "register-like" tokens) from
    turning the rest of the map dark; values above it get the top colour.
    """
    if not 0.0 < ceiling <= 100.0:
        raise ValueError(f"ceiling must be a percentile in (0, 100], got {ceiling}")
    m = np.asarray(maps, np.float32)
    if ceiling >= 100.0:
        return m.max(axis=(-2, -1), keepdims=True)
    return np.percentile(m, ceiling, axis=(-2, -1), keepdims=True).astype(np.float32)


def color_top(patch_map: np.ndarray, ceiling: float = 100.0) -> float:
    """:func:`color_tops` of one map, as a number."""
    return float(color_tops(patch_map, ceiling).item())


def heatmap_image(patch_map: np.ndarray, size: tuple[int, int], colorscale: str = DEFAULT_COLORSCALE,
                  vmax: float | None = None, smooth: bool = False, ceiling: float = 100.0) -> Image.Image:
    """The map alone, coloured from 0 to ``vmax`` (by default its ``ceiling``-th percentile, see
    :func:`color_top`), ``size`` = ``(width, height)``."""
    top = color_top(patch_map, ceiling) if vmax is None else vmax
    return Image.fromarray(colorize(upsample(patch_map, size, smooth), colorscale, top), "RGB")


def overlay(image: Image.Image, patch_map: np.ndarray, opacity: float = 0.6, colorscale: str = DEFAULT_COLORSCALE,
            vmax: float | None = None, smooth: bool = False, longest: int | None = None,
            ceiling: float = 100.0) -> Image.Image:
    """The map over the picture: ``(1 - opacity) * picture + opacity * colour(map)``.

    Args:
        image: the picture (any size; the map is stretched over all of it, as the model saw all of it).
        patch_map: ``[rows, cols]`` attention over the patches.
        opacity: 0 shows only the picture, 1 only the heatmap.
        longest: resize the picture so its longer side has this many pixels first.
        ceiling: percentile of the map given the top colour when ``vmax`` is not set (see :func:`color_top`).
    Returns:
        RGB image of the picture's aspect.
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    base = image.convert("RGB")
    if longest is not None:
        base = base.resize(fit_size(base.size, longest), Image.Resampling.LANCZOS)
    heat = heatmap_image(patch_map, base.size, colorscale, vmax, smooth, ceiling)
    return Image.blend(base, heat, opacity)


def overlay_grid(image: Image.Image, maps: np.ndarray, row_labels: list[str], col_labels: list[str],
                 cell: int = 96, opacity: float = 0.6, colorscale: str = DEFAULT_COLORSCALE, smooth: bool = False,
                 gap: int = 4, per_map_scale: bool = True, ceiling: float = 100.0) -> Image.Image:
    """Many overlays in one image: ``maps[i, j]`` drawn on the picture in row ``i``, column ``j``.

    Args:
        maps: ``[grid_rows, grid_cols, rows, cols]``, e.g. ``[layer, head, rows, cols]``.
        row_labels, col_labels: e.g. ``L0..`` and ``H0..``, drawn left and on top.
        cell: longer side of each thumbnail, pixels.
        per_map_scale: colour each map from 0 to its own maximum (else to the maximum of all maps).
        ceiling: with ``per_map_scale``, colour up to this percentile of each map instead (see :func:`color_top`).
    """
    n_rows, n_cols = maps.shape[:2]
    if len(row_labels) != n_rows or len(col_labels) != n_cols:
        raise ValueError(f"{len(row_labels)} x {len(col_labels)} labels for a {n_rows} x {n_cols} grid of maps")
    thumb = image.convert("RGB").resize(fit_size(image.size, cell), Image.Resampling.LANCZOS)
    tw, th = thumb.size
    # A grid row's cells at once, in a few numpy calls: in the server other sessions' threads hold Python's GIL, and
    # each call that releases it waits up to 5 ms to get it back (a loop of ~12 calls per cell took seconds under
    # load). Row by row in float32, so the temporaries are one row's, not the whole grid's in float64 (12 x 6 cells
    # of the example photo: 5.7 MB held instead of 38 MB, bench/render_cost.py).
    maps = np.asarray(maps, np.float32)
    vmax = color_tops(maps, ceiling) if per_map_scale else np.full((n_rows, 1, 1, 1), maps.max(), np.float32)
    picture = np.float32(1 - opacity) * np.asarray(thumb, np.float32) + np.float32(0.5)  # its share, rounded up
    colours = np.float32(opacity) * lut(colorscale).astype(np.float32)  # [level, 3]: each colour's share
    cells = np.empty((n_rows, n_cols, th, tw, 3), np.uint8)
    for i in range(n_rows):
        mixed = colours[colour_index(upsample_all(maps[i], (tw, th), smooth), vmax[i])]  # [grid_col, th, tw, 3]
        mixed += picture
        cells[i] = mixed  # truncated: the + 0.5 above rounds; at most 255.5, so within uint8
    f = font(12)
    left = 8 + max(int(f.getlength(t)) for t in row_labels)
    top = 18
    pitch_x, pitch_y = tw + gap, th + gap
    canvas = Image.fromarray(tile(cells, left, top, gap), "RGB")
    draw = ImageDraw.Draw(canvas)
    for j, label in enumerate(col_labels):
        draw.text((left + j * pitch_x + tw // 2, top // 2), label, fill=INK, font=f, anchor="mm")
    for i, label in enumerate(row_labels):
        draw.text((left - 4, top + i * pitch_y + th // 2), label, fill=INK, font=f, anchor="rm")
    return canvas


def mark_patch(image: Image.Image, grid: tuple[int, int], row: int, col: int, color: tuple[int, int, int] = (255, 0, 0),
               width: int = 2) -> Image.Image:
    """A copy of ``image`` with the outline of patch ``(row, col)`` of a ``grid`` stretched over it."""
    out = image.copy()
    rows, cols = grid
    w, h = out.size
    x0, y0 = col * w / cols, row * h / rows
    box = (x0, y0, max(x0, (col + 1) * w / cols - 1), max(y0, (row + 1) * h / rows - 1))  # >= 1 px on a thin picture
    ImageDraw.Draw(out).rectangle(box, outline=color, width=width)
    return out
