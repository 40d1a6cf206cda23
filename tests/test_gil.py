"""The server's GIL settings (:mod:`attnviz.server.gil`): what they set, and PNGs still the same."""
from __future__ import annotations

import io
import sys

import numpy as np
import PIL.ImageFile
from PIL import Image

from attnviz.render.raster import png_bytes
from attnviz.server import gil


def idat_chunks(png: bytes) -> int:
    """Number of IDAT chunks in a PNG file (Pillow writes one per encoder block)."""
    pos, n = 8, 0
    while pos < len(png):
        length = int.from_bytes(png[pos:pos + 4], "big")
        n += png[pos + 4:pos + 8] == b"IDAT"
        pos += 12 + length
    return n


def test_the_settings() -> None:
    gil.share_gil_sooner()  # as the server's configure() does
    assert sys.getswitchinterval() <= gil.SWITCH_INTERVAL_S + 1e-9
    assert PIL.ImageFile.MAXBLOCK >= gil.ENCODE_BLOCK
    gil.share_gil_sooner()  # idempotent
    assert PIL.ImageFile.MAXBLOCK == gil.ENCODE_BLOCK


def test_one_block_encodes_the_same_pixels_in_one_call() -> None:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (600, 1200, 3), dtype=np.uint8))  # ~2 MB of PNG, hard to compress
    saved = PIL.ImageFile.MAXBLOCK
    try:
        PIL.ImageFile.MAXBLOCK = 65536
        small_blocks = png_bytes(image, compress_level=1)
    finally:
        PIL.ImageFile.MAXBLOCK = saved
    one_block = png_bytes(image, compress_level=1)
    assert idat_chunks(small_blocks) > 10
    assert idat_chunks(one_block) == 1
    for png in (small_blocks, one_block):
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")), np.asarray(image))
