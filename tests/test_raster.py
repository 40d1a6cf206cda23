"""attnviz.render.raster: PNGs decode to the expected size, the all-heads grid, labelled and difference
heatmaps as palette images."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from attnviz.render import colorize, grid_image, head_image, labelled_heatmap, png_bytes
from attnviz.render.raster import SCALE_LEVELS, downsample_max


def attention(n: int, heads=(2, 3)) -> np.ndarray:
    x = np.random.default_rng(1).random((*heads, n, n)).astype(np.float32)
    return x / x.sum(-1, keepdims=True)


def test_head_png_decodes_to_matrix_size():
    m = attention(37)[0, 0]
    img = Image.open(io.BytesIO(png_bytes(head_image(m))))
    assert img.format == "PNG" and img.size == (37, 37)
    assert Image.open(io.BytesIO(png_bytes(head_image(m, size=96)))).size == (96, 96)


def test_grid_png_has_one_cell_per_head():
    w = attention(50, heads=(6, 12))
    img = Image.open(io.BytesIO(png_bytes(grid_image(w, cell=64))))
    # the last cell (layer 5, head 11) ends a gap (4 px) before the image's bottom-right corner and shows that head
    # (block maxima of its matrix); labels take the left and top margins
    x1, y1 = img.size[0] - 4, img.size[1] - 4
    x0, y0 = x1 - 64, y1 - 64
    assert (x0 - 12 * 68 + 68, y0 - 6 * 68 + 68) == (30, 18)  # 12 columns and 6 rows of 64 + 4 px after the margins
    assert img.mode == "P"  # one byte per pixel
    cell = np.asarray(img.convert("RGB").crop((x0, y0, x1, y1)))
    expected = colorize(downsample_max(w[5, 11], 64), levels=SCALE_LEVELS)
    expected = np.asarray(Image.fromarray(expected).resize((64, 64), Image.Resampling.NEAREST))
    np.testing.assert_array_equal(cell, expected)


def test_downsample_keeps_peaks():
    m = np.zeros((512, 512), np.float32)
    m[100, 300] = 1.0
    small = downsample_max(m, 96)
    assert small.shape == (96, 96) and small.max() == 1.0


def test_labelled_heatmap_png():
    tokens = [f"tok{i}" for i in range(12)]
    img = labelled_heatmap(attention(12)[0, 0], tokens, tokens, "title")
    out = Image.open(io.BytesIO(png_bytes(img)))
    assert out.width > 12 * 9 and out.height > 12 * 9
    big = labelled_heatmap(attention(512, heads=(1, 1))[0, 0], ["t"] * 512, ["t"] * 512, "long")
    assert max(big.size) <= 1024 + 200


def test_palette_images_keep_antialiased_ink():
    """The labels of a palette image are drawn in the ink's greys (antialiased), on white, outside the cells."""
    from attnviz.render.raster import GREYS, INK, WHITE

    img = labelled_heatmap(attention(6)[0, 0], list("abcdef"), list("abcdef"), "a title")
    index = np.asarray(img)
    inks = np.unique(index[(index > WHITE) & (index <= WHITE + GREYS)])
    assert len(inks) >= GREYS // 2 and WHITE + GREYS in inks  # many shades, down to the full ink
    assert tuple(np.asarray(img.convert("RGB"))[index == WHITE + GREYS][0]) == INK
    assert (index == WHITE).sum() > index.size // 4  # the margins


def test_labelled_heatmap_greys_masked_cells():
    from plotly.colors import hex_to_rgb

    from attnviz.render.colors import MASKED_COLOR
    from attnviz.render.figures import causal_mask

    m = np.tril(np.full((3, 3), 0.5, dtype=np.float32))

    def grey_pixels(masked: np.ndarray | None) -> int:
        img = np.asarray(labelled_heatmap(m, list("abc"), list("abc"), masked=masked).convert("RGB"))
        return int(np.all(img == hex_to_rgb(MASKED_COLOR), axis=-1).sum())

    cell = 28  # px per cell for a 3 x 3 matrix
    assert grey_pixels(causal_mask(3)) - grey_pixels(None) == 3 * cell * cell  # the three cells above the diagonal


def test_difference_heatmap_is_white_at_zero_blue_below_red_above():
    from attnviz.render.colors import DIVERGING_COLORSCALE, lut
    from attnviz.render.raster import difference_heatmap

    img = difference_heatmap(np.array([[-0.5, 0.0], [0.0, 0.5]], np.float32), ["a", "b"], ["a", "b"])
    img = np.asarray(img.convert("RGB"))
    blue, white, red = (lut(DIVERGING_COLORSCALE, SCALE_LEVELS)[i] for i in (0, SCALE_LEVELS // 2, -1))
    assert blue[2] > blue[0] and red[0] > red[2] and white.min() > 230

    def cells(colour: np.ndarray) -> int:
        return int(np.all(img == colour, axis=-1).sum()) // (28 * 28)  # 28 px per cell for a 2 x 2 matrix

    assert cells(blue) >= 1 and cells(red) >= 1 and cells(white) >= 2


def test_labelled_heatmap_colour_range_can_be_shared():
    """Two matrices drawn against one top (the Compare page's A and B): the smaller one never reaches the top
    colour."""
    from attnviz.render.colors import lut

    m = np.full((2, 2), 0.25, np.float32)
    top = lut("Viridis", SCALE_LEVELS)[-1]
    alone = np.asarray(labelled_heatmap(m, list("ab"), list("ab")).convert("RGB"))
    shared = np.asarray(labelled_heatmap(m, list("ab"), list("ab"), vmax=0.5).convert("RGB"))
    assert int(np.all(alone == top, axis=-1).sum()) >= 4 * 28 * 28  # every cell is its own maximum
    assert int(np.all(shared == top, axis=-1).sum()) < 28 * 28  # only the colour bar's top reaches it


def test_grid_cells_shrink_for_deep_models():
    from attnviz.render.raster import fit_cell

    assert fit_cell(6) == 96  # MiniLM keeps full-size thumbnails
    deep = grid_image(attention(20, heads=(30, 9)), cell=fit_cell(30))
    assert deep.height <= 1300 and fit_cell(30) >= 32


@pytest.mark.parametrize("shape", [(512, 512), (7, 300), (3, 97, 200), (2, 3, 50, 50)])
def test_downsample_is_the_maximum_of_each_block(shape):
    m = np.random.default_rng(0).random(shape, dtype=np.float32)
    small = downsample_max(m, 96)
    r_out, c_out = min(shape[-2], 96), min(shape[-1], 96)
    assert small.shape == (*shape[:-2], r_out, c_out)
    r_edges = np.linspace(0, shape[-2], r_out + 1).astype(int)
    c_edges = np.linspace(0, shape[-1], c_out + 1).astype(int)
    for i in (0, r_out // 2, r_out - 1):  # a block is cells [floor(i n / size), floor((i + 1) n / size))
        for j in (0, c_out - 1):
            block = m[..., r_edges[i]:r_edges[i + 1], c_edges[j]:c_edges[j + 1]]
            np.testing.assert_array_equal(small[..., i, j], block.max(axis=(-2, -1)))
