"""What drawing the Image page's all-heads grid costs the server: time and the memory it allocates on the way.

The grid (:func:`attnviz.render.overlay.overlay_grid`) draws every layer x head map over the picture: for DINOv2-S,
12 x 6 cells of 128 px, from maps of 16 x 16 patches (224 px) or 32 x 32 (448 px). Eight people's Image pages
draw theirs at once, each in its session's thread, so what one grid allocates is multiplied by the sessions drawing
at that moment. This script draws the grid for the example photo with random maps, ``--reps`` times, and prints
the median time and the largest amount numpy and Pillow held at once while drawing one (``tracemalloc``: Python's
and numpy's allocations). Asserts nothing.

Usage::

    .venv/bin/python bench/render_cost.py
    .venv/bin/python bench/render_cost.py --reps 20
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from attnviz.render.overlay import overlay_grid  # noqa: E402

log = logging.getLogger("render_cost")
PHOTO = ROOT / "assets" / "examples" / "cat.jpg"
CELL = 128  # the Image page's GRID_CELL


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=9)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    picture = Image.open(PHOTO).convert("RGB")
    picture.thumbnail((640, 640))  # what the page keeps for display (DISPLAY_SIDE)
    rows, cols = [f"L{i}" for i in range(12)], [f"H{j}" for j in range(6)]
    for patches, side in ((16, 224), (32, 448)):
        maps = np.random.default_rng(0).random((12, 6, patches, patches)).astype(np.float32)
        overlay_grid(picture, maps, rows, cols, CELL)  # warm-up: fonts, colour tables
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            overlay_grid(picture, maps, rows, cols, CELL)
            times.append(time.perf_counter() - t0)
        tracemalloc.start()
        overlay_grid(picture, maps, rows, cols, CELL)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        log.info("DINOv2-S at %d px (12 x 6 maps of %d x %d, cells of %d px): median %.1f ms of %d, at most %.1f MB "
                 "held while drawing", side, patches, patches, CELL, 1000 * statistics.median(times), args.reps,
                 peak / 2**20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
