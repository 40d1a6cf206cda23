"""attnviz.render.overlay: heatmaps over a picture, the overlay grid, the patch outline (numpy + Pillow)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from attnviz.analysis.patches import query_maps
from attnviz.render.overlay import (
    color_top,
    fit_size,
    heatmap_image,
    mark_patch,
    overlay,
    overlay_grid,
    resample_matrix,
    upsample,
    upsample_all,
)
from attnviz.render.raster import png_bytes

GRID = (3, 4)


@pytest.fixture()
def weights() -> np.ndarray:
    """Random attention [layer=2, head=3, query=13, key=13] (CLS + 3x4 patches), rows summing to 1."""
    w = np.random.default_rng(0).random((2, 3, 13, 13)).astype(np.float32)
    return w / w.sum(-1, keepdims=True)


def test_upsample_keeps_one_block_per_patch():
    m = np.arange(12, dtype=np.float32).reshape(3, 4)
    up = upsample(m, (40, 30))
    assert up.shape == (30, 40)
    assert (up[:10, :10] == 0).all() and (up[20:, 30:] == 11).all()
    smooth = upsample(m, (40, 30), smooth=True)
    assert len(np.unique(smooth)) > 12


def test_color_top():
    m = np.array([[0, 1, 2, 100]], np.float32)
    assert color_top(m) == 100
    assert color_top(m, 50) == pytest.approx(1.5)
    with pytest.raises(ValueError):
        color_top(m, 0)


def test_overlay_blends_picture_and_heatmap():
    pic = Image.new("RGB", (80, 60), (200, 100, 50))
    m = np.random.default_rng(1).random(GRID).astype(np.float32)
    assert np.array_equal(np.asarray(overlay(pic, m, 0.0)), np.asarray(pic))
    heat = heatmap_image(m, pic.size)
    assert np.array_equal(np.asarray(overlay(pic, m, 1.0)), np.asarray(heat))
    half = np.asarray(overlay(pic, m, 0.5), np.int16)
    expected = (np.asarray(pic, np.int16) + np.asarray(heat, np.int16)) / 2
    assert np.abs(half - expected).max() <= 1
    small = overlay(pic, m, 0.5, longest=40)
    assert small.size == fit_size(pic.size, 40) == (40, 30)
    assert Image.open(io.BytesIO(png_bytes(small))).size == (40, 30)
    with pytest.raises(ValueError):
        overlay(pic, m, 1.5)


def test_overlay_grid_is_one_image_with_a_cell_per_map(weights):
    pic = Image.new("RGB", (200, 100), (128, 128, 128))
    maps = query_maps(weights, GRID, 0)  # [2, 3, 3, 4]
    img = overlay_grid(pic, maps, ["L0", "L1"], ["H0", "H1", "H2"], cell=64, opacity=1.0, gap=4)
    tw, th = fit_size(pic.size, 64)
    assert img.height == 18 + 2 * (th + 4)
    assert img.width > 3 * (tw + 4)
    with pytest.raises(ValueError):
        overlay_grid(pic, maps, ["L0"], ["H0", "H1", "H2"])


@pytest.mark.parametrize("smooth", [False, True])
def test_upsample_all_is_pillows_resize_of_each_map(smooth):
    maps = np.random.default_rng(2).random((2, 3, 5, 7)).astype(np.float32)
    together = upsample_all(maps, (61, 45), smooth)
    assert together.shape == (2, 3, 45, 61)
    method = Image.Resampling.BILINEAR if smooth else Image.Resampling.NEAREST
    for i in range(2):
        for j in range(3):
            pillow = np.asarray(Image.fromarray(maps[i, j], "F").resize((61, 45), method), np.float32)
            np.testing.assert_allclose(together[i, j], pillow, atol=1e-6)


@pytest.mark.parametrize(("n", "size"), [(32, 128), (32, 640), (37, 96), (5, 61), (16, 13), (7, 7)])
def test_flat_blocks_are_the_product_with_the_resample_matrix(n, size):
    """Flat blocks are taken by index: the very numbers of the product with the 0/1 resample matrix (every map of
    a DINOv2 grid at 448 and 518 px, thumbnails and full-size overlays, and shrinking)."""
    maps = np.random.default_rng(n).random((3, 2, n, n + 1)).astype(np.float32) * 10 - 5
    product = resample_matrix(n, size) @ maps @ resample_matrix(n + 1, size + 3).T
    np.testing.assert_array_equal(upsample_all(maps, (size + 3, size)), product)


@pytest.mark.parametrize(("smooth", "ceiling", "per_map_scale"), [(False, 100.0, True), (True, 90.0, True),
                                                                  (False, 100.0, False)])
def test_overlay_grid_cells_are_the_overlays_of_each_map(smooth, ceiling, per_map_scale):
    """Each cell is the picture blended with its own map, coloured up to that map's ceiling (or the maximum of
    all maps): what drawing the cells one by one gives."""
    pic = Image.fromarray(np.random.default_rng(3).integers(0, 255, (50, 80, 3), dtype=np.uint8), "RGB")
    maps = np.random.default_rng(4).random((2, 3, 4, 4)).astype(np.float32)
    img = np.asarray(overlay_grid(pic, maps, ["L0", "L1"], ["H0", "H1", "H2"], cell=40, opacity=0.6,
                                  smooth=smooth, gap=4, per_map_scale=per_map_scale, ceiling=ceiling), np.int16)
    thumb = pic.resize(fit_size(pic.size, 40), Image.Resampling.LANCZOS)
    tw, th = thumb.size
    left = img.shape[1] - 3 * (tw + 4)
    for i in range(2):
        for j in range(3):
            m = maps[i, j]
            top = color_top(m, ceiling) if per_map_scale else float(maps.max())
            heat = heatmap_image(m, (tw, th), vmax=top, smooth=smooth)
            want = np.clip(0.4 * np.asarray(thumb, np.float32) + 0.6 * np.asarray(heat, np.float32) + 0.5, 0, 255)
            cell = img[18 + i * (th + 4):18 + i * (th + 4) + th, left + j * (tw + 4):left + j * (tw + 4) + tw]
            diff = np.abs(cell - want.astype(np.int16))
            assert (diff == 0).mean() > 0.99 and diff.max() <= 8  # float rounding may move a value one colour step


def test_mark_patch_outlines_the_patch():
    img = mark_patch(Image.new("RGB", (40, 30), (0, 0, 0)), GRID, 1, 2)
    a = np.asarray(img)
    assert tuple(a[10, 20]) == (255, 0, 0)  # top-left corner of patch (1, 2): x = 2 * 10, y = 1 * 10
    assert tuple(a[15, 25]) == (0, 0, 0)  # inside stays
