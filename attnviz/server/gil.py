"""Shorter waits for Python's GIL in the server, where every session's script runs in a thread of one process.

A thread that calls into C code which releases the GIL (a numpy operation, zlib inside Pillow's PNG encoder, a
torch op) must take the GIL back afterwards. While another session's thread runs Python (building a figure, a
table), that takes up to the switch interval: 5 ms by default, during which the C work's core sits idle. Pillow
encodes a PNG in blocks of ``ImageFile.MAXBLOCK`` (64 KB) and takes the GIL back after each one, so a 600 KB
all-heads PNG waited about ten times.

Measured with ``bench/forward_contention.py`` (2 cores, median of 5; drawing and encoding as the pages do): the Text
page's all-heads PNG of a 512-token MiniLM run beside one busy Python thread 0.27 s -> 0.14 s, beside two
0.72 s -> 0.21 s; the Image page's overlay grid (DINOv2-S) 0.32 s -> 0.10 s and 1.20 s -> 0.18 s (5 ms and 64 KB
blocks -> 1 ms and one block). Alone, 0.12 s and 0.07 s at either setting.
"""
from __future__ import annotations

import logging
import sys

from PIL import ImageFile

log = logging.getLogger(__name__)

SWITCH_INTERVAL_S = 0.001
"""How long a thread may hold the GIL while another waits (``sys.setswitchinterval``; CPython's default 5 ms)."""
ENCODE_BLOCK = 16 * 2**20
"""Pillow's output block for encoders (``ImageFile.MAXBLOCK``): large enough that an image is encoded in one call."""


def share_gil_sooner() -> None:
    """Apply :data:`SWITCH_INTERVAL_S` and :data:`ENCODE_BLOCK` to this process (idempotent)."""
    if sys.getswitchinterval() > SWITCH_INTERVAL_S:
        sys.setswitchinterval(SWITCH_INTERVAL_S)
    if ImageFile.MAXBLOCK < ENCODE_BLOCK:
        ImageFile.MAXBLOCK = ENCODE_BLOCK
        log.info("GIL: switch interval %.1f ms, images encoded in blocks of %d MB", SWITCH_INTERVAL_S * 1e3,
                 ENCODE_BLOCK >> 20)
