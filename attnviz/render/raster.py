"""Attention as PNG images (Pillow): single heads, labelled heatmaps and the all-heads grid.

Images, not float JSON, carry the many-heads views to the browser: a 512x512 head is ~33 KB as PNG. The grid and
the labelled heatmaps are palette images (one byte per pixel: :data:`SCALE_LEVELS` colours of the scale, white, the
ink's greys for antialiased text, the masked grey): a third of the pixel data of RGB. At 512 tokens (MiniLM) the
grid takes 32 ms to draw and encode instead of 96 ms as RGB, and 291 KB instead of 613 KB.
"""
from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from attnviz.render.colors import (
    DEFAULT_COLORSCALE,
    DIVERGING_COLORSCALE,
    MASKED_RGB,
    colorize,
    colour_index,
    lut,
    symmetric_max,
)
from attnviz.result import block_max

_FONT_FILES = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",)
BACKGROUND = (255, 255, 255)
INK = (40, 40, 40)

SCALE_LEVELS = 240
"""Colour-scale entries (indices ``0 .. SCALE_LEVELS - 1``) of a palette image's 256 colours."""
WHITE = SCALE_LEVELS
"""Palette index of the background."""
GREYS = 14
"""Antialiased ink: indices ``WHITE + 1 .. WHITE + GREYS``, from a trace of ink to the ink itself."""
MASKED = WHITE + GREYS + 1
"""Palette index of masked cells (the last of the 256)."""


@lru_cache(maxsize=8)
def font(size: int = 12) -> ImageFont.FreeTypeFont:
    """A TrueType font: DejaVu Sans where installed, else Pillow's built-in font."""
    for f in _FONT_FILES:
        try:
            return ImageFont.truetype(f, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def png_bytes(image: Image.Image, compress_level: int = 6) -> bytes:
    """Encode an image as PNG (``compress_level`` 1 is ~3x faster and ~25 % larger than the default 6)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=compress_level)
    return buf.getvalue()


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    """Encode an RGB image as JPEG, as pages show overlays on photos. ``st.image`` turns anything else into a JPEG
    on every rerun (PNG bytes decoded and re-encoded at quality 90, a PIL image encoded at quality 100); JPEG bytes
    given with ``output_format="JPEG"`` go to the browser as they are."""
    buf = io.BytesIO()
    (image if image.mode == "RGB" else image.convert("RGB")).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def downsample_max(matrix: np.ndarray, size: int) -> np.ndarray:
    """Shrink the last two axes (``[..., rows, cols]``) to at most ``size`` each by block maxima (sparse peaks
    stay visible): :func:`attnviz.result.block_max`, the blocks an overview uses."""
    return block_max(matrix, size)


def nearest_index(n: int, size: int) -> np.ndarray:
    """Source index of each of ``size`` output pixels when ``n`` cells are stretched nearest-neighbour (as
    Pillow's ``NEAREST`` resize does)."""
    return np.minimum(((np.arange(size) + 0.5) * n / size).astype(int), n - 1)


def head_image(matrix: np.ndarray, size: int | None = None, colorscale: str = DEFAULT_COLORSCALE,
               vmax: float | None = None) -> Image.Image:
    """One ``[query, key]`` matrix as an RGB image, one pixel per cell, or ``size`` px square.

    Larger matrices are shrunk by block maxima; smaller ones are enlarged without smoothing.
    """
    m = np.asarray(matrix, dtype=np.float32)
    if size is not None:
        m = downsample_max(m, size)
    img = Image.fromarray(colorize(m, colorscale, vmax), "RGB")
    if size is not None and img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.NEAREST)
    return img


@lru_cache(maxsize=32)
def palette(colorscale: str) -> bytes:
    """The 256 RGB colours of a palette image: the scale, white, the ink's greys, the masked grey."""
    white, ink = np.array(BACKGROUND, float), np.array(INK, float)
    greys = [white + (ink - white) * k / GREYS for k in range(1, GREYS + 1)]
    table = np.vstack([lut(colorscale, SCALE_LEVELS), [BACKGROUND], np.round(greys), [MASKED_RGB]])
    return table.astype(np.uint8).tobytes()


def palette_image(index: np.ndarray, ink: Image.Image, colorscale: str) -> Image.Image:
    """A palette ("P") image of ``index`` (``[height, width]`` uint8 palette indices) with the text drawn in
    ``ink`` (an "L" image of the same size: 0 nothing, 255 full ink, as Pillow antialiases) laid over it."""
    level = (np.asarray(ink, np.uint16) * GREYS + 127) // 255  # 0 (none) .. GREYS (full ink)
    image = Image.fromarray(np.where(level > 0, WHITE + level, index).astype(np.uint8), "P")
    image.putpalette(palette(colorscale))
    return image


def tile(cells: np.ndarray, left: int, top: int, gap: int, fill: object = BACKGROUND) -> np.ndarray:
    """``cells[grid_row, grid_col, height, width, ...]`` (e.g. ``..., 3`` RGB, or palette indices) laid out as
    one array: ``gap`` px between cells, a ``left`` x ``top`` margin for labels, ``fill`` elsewhere."""
    n_rows, n_cols, h, w = cells.shape[:4]
    rest = cells.shape[4:]
    pixels = np.full((top + n_rows * (h + gap), left + n_cols * (w + gap), *rest), fill, cells.dtype)
    body = pixels[top:, left:].reshape(n_rows, h + gap, n_cols, w + gap, *rest)
    body[:, :h, :, :w] = cells.transpose(0, 2, 1, 3, *range(4, cells.ndim))
    return pixels


def grid_image(weights: np.ndarray, cell: int = 96, colorscale: str = DEFAULT_COLORSCALE,
               per_head_scale: bool = True, gap: int = 4) -> Image.Image:
    """All heads in one palette image: a row per layer, a column per head, labelled ``L{layer}`` / ``H{head}``.

    Every head is shrunk (block maxima) or stretched (nearest) to ``cell`` px, as :func:`head_image` does, but
    all at once in numpy: this image is on the critical path of every Run.

    Args:
        weights: ``[layer, head, query, key]``.
        cell: thumbnail side in pixels.
        per_head_scale: colour each head from 0 to its own maximum (else 0 to the global maximum).
    """
    n_layers, n_heads = weights.shape[:2]
    small = downsample_max(np.asarray(weights, dtype=np.float32), cell)
    rows, cols = nearest_index(small.shape[2], cell), nearest_index(small.shape[3], cell)
    small = small[:, :, rows][:, :, :, cols]                        # [layer, head, cell, cell]
    vmax = small.max(axis=(2, 3), keepdims=True) if per_head_scale else small.max()
    index = colour_index(small, vmax, SCALE_LEVELS)                 # [layer, head, cell, cell]
    left, top = 30, 18
    pitch = cell + gap
    index = tile(index, left, top, gap, WHITE)
    ink = Image.new("L", (index.shape[1], index.shape[0]), 0)
    draw = ImageDraw.Draw(ink)
    f = font(12)
    for h in range(n_heads):
        draw.text((left + h * pitch + cell // 2, top // 2), f"H{h}", fill=255, font=f, anchor="mm")
    for layer in range(n_layers):
        draw.text((left // 2, top + layer * pitch + cell // 2), f"L{layer}", fill=255, font=f, anchor="mm")
    return palette_image(index, ink, colorscale)


def fit_cell(n_layers: int, max_height: int = 1300, largest: int = 96, smallest: int = 32, gap: int = 4) -> int:
    """Thumbnail side for :func:`grid_image` so that ``n_layers`` rows fit in about ``max_height`` px
    (a 30-layer decoder gets 38 px cells instead of a 3000 px tall image)."""
    return int(max(smallest, min(largest, (max_height - 18) // max(n_layers, 1) - gap)))


def labelled_heatmap(matrix: np.ndarray, row_labels: list[str], col_labels: list[str], title: str = "",
                     colorscale: str = DEFAULT_COLORSCALE, max_side: int = 1024,
                     masked: np.ndarray | None = None, vmin: float = 0.0,
                     vmax: float | None = None) -> Image.Image:
    """A publication-style heatmap (palette image): the matrix, token labels on both axes (when they fit), a
    title and a colour bar. Rows are queries, columns are keys; ``masked`` (bool ``[query, key]``) cells are grey.
    Colours span ``[vmin, vmax]`` (``vmax``: the matrix's maximum by default); a signed matrix takes a diverging
    scale and ``vmin = -vmax``.
    """
    m = np.asarray(matrix, dtype=np.float32)
    high = float(m.max()) if vmax is None else float(vmax)
    rows, cols = m.shape
    px = max(1, min(28, max_side // max(rows, cols)))
    show_labels = px >= 9
    f = font(max(8, min(12, px - 2)) if show_labels else 10)
    label_w = max((int(f.getlength(t)) for t in (row_labels + col_labels)), default=0) + 8 if show_labels else 8
    top = 28 + label_w
    left = label_w
    bar = 60
    cells = colour_index(m - np.float32(vmin), high - vmin, SCALE_LEVELS)
    if masked is not None:
        cells[masked] = MASKED
    body = np.repeat(np.repeat(cells, px, axis=0), px, axis=1)
    index = np.full((top + body.shape[0] + 10, left + body.shape[1] + bar), WHITE, np.uint8)
    index[top:top + body.shape[0], left:left + body.shape[1]] = body
    ink = Image.new("L", (index.shape[1], index.shape[0]), 0)
    draw = ImageDraw.Draw(ink)
    draw.text((left, 6), title, fill=255, font=font(14))
    if show_labels:
        for i, t in enumerate(row_labels):
            draw.text((left - 4, top + i * px + px // 2), t, fill=255, font=f, anchor="rm")
        col_strip = Image.new("L", (label_w, cols * px), 0)
        d2 = ImageDraw.Draw(col_strip)
        for j, t in enumerate(col_labels):
            d2.text((4, j * px + px // 2), t, fill=255, font=f, anchor="lm")
        ink.paste(col_strip.rotate(90, expand=True), (left, top - label_w))
    _colour_bar(index, draw, (left + body.shape[1] + 12, top), body.shape[0], vmin, high)
    return palette_image(index, ink, colorscale)


def difference_heatmap(matrix: np.ndarray, row_labels: list[str], col_labels: list[str], title: str = "",
                       masked: np.ndarray | None = None) -> Image.Image:
    """:func:`labelled_heatmap` of a signed ``[query, key]`` matrix (a difference of attention), as
    :func:`attnviz.render.figures.difference_figure` colours it: symmetric about 0, white where equal."""
    top = symmetric_max(matrix, masked)
    return labelled_heatmap(matrix, row_labels, col_labels, title, DIVERGING_COLORSCALE, masked=masked,
                            vmin=-top, vmax=top)


def _colour_bar(index: np.ndarray, ink: ImageDraw.ImageDraw, at: tuple[int, int], height: int,
                vmin: float, vmax: float) -> None:
    """A colour bar 12 px wide at ``at`` in the palette ``index`` (cut at its edge), its ends labelled in ``ink``."""
    height = max(height, 40)
    span = vmax - vmin if vmax > vmin else 1.0
    ramp = np.linspace(vmax - vmin, 0, height, dtype=np.float32)[:, None].repeat(12, axis=1)
    region = index[at[1]:at[1] + height, at[0]:at[0] + 12]
    region[...] = colour_index(ramp, span, SCALE_LEVELS)[:region.shape[0], :region.shape[1]]
    f = font(10)
    ink.text((at[0] + 15, at[1]), f"{vmax:+.2g}" if vmin < 0 else f"{vmax:.2g}", fill=255, font=f, anchor="lt")
    ink.text((at[0] + 15, at[1] + height), f"{vmin:+.2g}" if vmin < 0 else f"{vmin:.2g}", fill=255, font=f,
             anchor="lb")
