"""Server work when other work wants the cores: model forwards (the GIL, eager vs traced; OpenMP's waiting,
default vs passive) and drawing (the GIL's switch interval and Pillow's encoder blocks). All show up in the server,
where every session's script runs in a thread of one process.

1. **GIL.** While one session's thread runs a model, others build figures, tables and messages in pure Python. An
   eager forward calls a few hundred torch ops from Python and must take the GIL back after each; a busy thread
   keeps it up to the switch interval (5 ms) each time. A traced forward (:mod:`attnviz.models.traced`) takes it
   back once. Measured in this process, beside ``--busy`` threads looping in pure Python.
2. **OpenMP waiting.** torch's OpenMP threads spin for a while when they wait (GNU libgomp's default), taking CPU
   from the threads they wait for when the cores are busy. The server used to set ``OMP_WAIT_POLICY=PASSIVE``;
   with short runs on one thread (:mod:`attnviz.models.threads`) it gained nothing and went. Measured in fresh
   processes (libgomp reads the
   policy once), traced forwards alone and beside two threads that keep both cores busy outside the GIL (numpy
   sorts).

3. **Drawing.** A page's images are drawn with numpy and encoded with Pillow, both of which release the GIL and
   take it back, many times per image. :mod:`attnviz.server.gil` (``ATTNVIZ_GIL=0`` turns it off) shortens the
   switch interval (5 -> 1 ms) and has Pillow encode an image in one block instead of 64 KB blocks. Measured in
   this process, beside ``--busy`` Python threads: the Text page's all-heads PNG (512 tokens) and the Image page's
   overlay grid PNG (DINOv2-S).

Inputs: MiniLM on a 512-token text, DINOv2-S on the example cat photo. Figures: median seconds of ``model.run`` (or
of drawing and encoding) over ``--reps`` runs after one warm-up. Prints Markdown tables; asserts nothing.

Usage::

    .venv/bin/python bench/forward_contention.py [--reps 7] [--busy 0 1 2] [--max-load 1.0]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import make_text, single_token_words, wait_for_quiet_machine  # noqa: E402

PHOTO = ROOT / "assets" / "examples" / "cat.jpg"


def python_busy(stop: threading.Event) -> None:
    """Pure-Python work until ``stop`` (holds the GIL except when the interpreter hands it over)."""
    x = 0
    while not stop.is_set():
        for i in range(1000):
            x += i * i


def cores_busy(stop: threading.Event) -> None:
    """CPU work outside the GIL until ``stop`` (numpy sorts release it)."""
    import numpy as np

    a = np.random.default_rng(0).random(2_000_000)
    while not stop.is_set():
        np.sort(a)


def median_seconds(run: Callable[[], object], reps: int, beside: Callable[[threading.Event], None] | None = None,
                   n_beside: int = 0) -> float:
    """Median wall time of ``run()`` over ``reps`` calls with ``n_beside`` threads running ``beside``."""
    stop = threading.Event()
    threads = [threading.Thread(target=beside, args=(stop,), daemon=True) for _ in range(n_beside)]
    for t in threads:
        t.start()
    try:
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
    finally:
        stop.set()
        for t in threads:
            t.join()
    return statistics.median(times)


def cases() -> dict[str, tuple[object, Callable[[], object]]]:
    """label -> (model, a run of it)."""
    import attnviz

    text_model, image_model = attnviz.load_model("minilm"), attnviz.load_model("dinov2-small")
    text = make_text(single_token_words(text_model.tokenizer), 512, "forward-contention")
    photo = PHOTO.read_bytes()
    return {"MiniLM, 512 tokens": (text_model, lambda: text_model.run(text=text)),
            "DINOv2-S, 224 px": (image_model, lambda: image_model.run(image=photo))}


def gil_table(reps: int, busy: list[int]) -> None:
    print("GIL: eager vs traced, beside busy Python threads\n")
    print("| model | busy Python threads | eager (s) | traced (s) |\n|---|---:|---:|---:|")
    for label, (model, run) in cases().items():
        traced = model.traced
        if traced is None:
            print(f"| {label} | – | – | not traced (see the log) |")
            continue
        run()  # warm-up
        for n in busy:
            figures = {}
            for mode, t in (("eager", None), ("traced", traced)):
                model.traced = t
                run()
                figures[mode] = median_seconds(run, reps, python_busy, n)
            model.traced = traced
            print(f"| {label} | {n} | {figures['eager']:.3f} | {figures['traced']:.3f} |", flush=True)


CHILD = """
import json, sys
import torch  # the policy is the environment's (importing attnviz sets nothing)
sys.path.insert(0, sys.argv[1])
from bench.forward_contention import cases, cores_busy, median_seconds
reps, out = int(sys.argv[2]), {}
for label, (model, run) in cases().items():
    run()
    out[label] = [median_seconds(run, reps), median_seconds(run, reps, cores_busy, 2)]
print(json.dumps(out))
"""


def drawings() -> dict[str, Callable[[], bytes]]:
    """label -> drawing and encoding one PNG as the pages do."""
    import logging

    from attnviz.analysis.patches import query_maps
    from attnviz.images import load_image
    from attnviz.render.overlay import overlay_grid
    from attnviz.render.raster import fit_cell, grid_image, png_bytes

    logging.getLogger("streamlit.runtime.caching").setLevel(logging.ERROR)  # "no runtime": cached calls run plainly
    from attnviz.web.image.page import GRID_CELL

    (text_model, text_run), (image_model, image_run) = cases().values()
    text, image = text_run(), image_run()
    picture = load_image(PHOTO.read_bytes())
    maps = query_maps(image.weights, image.grid, 0)
    return {"Text: all heads (512 tokens)": lambda: png_bytes(
                grid_image(text.weights, cell=fit_cell(text.n_layers)), compress_level=1),
            "Image: overlay grid (DINOv2-S)": lambda: png_bytes(
                overlay_grid(picture, maps, [f"L{i}" for i in range(image.n_layers)],
                             [f"H{j}" for j in range(image.n_heads)], GRID_CELL), compress_level=1)}


def drawing_table(reps: int, busy: list[int]) -> None:
    import PIL.ImageFile

    from attnviz.server import gil

    print("\nDrawing: switch interval and Pillow's encoder block, beside busy Python threads\n")
    print("| drawing | busy Python threads | 5 ms, 64 KB blocks (s) | "
          f"{gil.SWITCH_INTERVAL_S * 1e3:g} ms, one block (s) |\n|---|---:|---:|---:|")
    settings = {"default": (0.005, 65536), "attnviz": (gil.SWITCH_INTERVAL_S, gil.ENCODE_BLOCK)}
    saved = sys.getswitchinterval(), PIL.ImageFile.MAXBLOCK
    try:
        for label, draw in drawings().items():
            draw()
            for n in busy:
                figures = {}
                for name, (interval, block) in settings.items():
                    sys.setswitchinterval(interval)
                    PIL.ImageFile.MAXBLOCK = block
                    figures[name] = median_seconds(draw, reps, python_busy, n)
                print(f"| {label} | {n} | {figures['default']:.3f} | {figures['attnviz']:.3f} |", flush=True)
    finally:
        sys.setswitchinterval(saved[0])
        PIL.ImageFile.MAXBLOCK = saved[1]


def omp_table(reps: int) -> None:
    print("\nOpenMP waiting: traced forwards alone and beside two threads keeping both cores busy (fresh processes)\n")
    print("| model | OMP_WAIT_POLICY | alone (s) | cores busy (s) |\n|---|---|---:|---:|")
    rows: dict[str, dict[str, list[float]]] = {}
    for policy in ("default", "PASSIVE"):
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        if policy != "default":
            env["OMP_WAIT_POLICY"] = policy
        res = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(reps)], env=env, capture_output=True,
                             text=True, check=True)
        for label, figures in json.loads(res.stdout.strip().splitlines()[-1]).items():
            rows.setdefault(label, {})[policy] = figures
    for label, by_policy in rows.items():
        for policy, (alone, busy) in by_policy.items():
            print(f"| {label} | {policy} | {alone:.3f} | {busy:.3f} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--busy", type=int, nargs="+", default=[0, 1, 2], help="numbers of busy Python threads")
    ap.add_argument("--max-load", type=float, default=None,
                    help="first wait (up to 30 min) until the 1-minute load average is below this")
    args = ap.parse_args(argv)
    wait_for_quiet_machine(args.max_load)
    gil_table(args.reps, args.busy)
    drawing_table(args.reps, args.busy)
    omp_table(args.reps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
