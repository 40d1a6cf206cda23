"""Several people pressing Run at the same moment: N 512-token MiniLM runs started together, each followed by what
the Text page draws for it (the all-heads grid and the focused head, both as PNG), with 1..N forward passes allowed
at once (``attnviz.web.runs.MODEL_RUN_SLOTS`` is 2). Threads of one process, as the server's sessions are; no Streamlit.

Prints, per number of slots, the median over ``--reps`` rounds of each run's time until its forward pass is done
and until its images are drawn (runs in order of finishing), and of the last run's time. Asserts nothing.

Usage::

    .venv/bin/python bench/run_slots.py [--runs 3] [--reps 5]
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import attnviz  # noqa: E402
from attnviz.render.raster import fit_cell, grid_image, labelled_heatmap, png_bytes  # noqa: E402
from attnviz.server import gil  # noqa: E402
from bench.common import make_text, single_token_words  # noqa: E402


def one_run(model, text: str, slots: threading.Semaphore, t0: float, out: list, i: int) -> None:
    """A Text-page run: the forward pass (in a slot), then the all-heads PNG and the focused head's PNG."""
    with slots:
        r = model.run(text=text)
    forward = time.perf_counter() - t0
    png_bytes(grid_image(r.weights, cell=fit_cell(r.n_layers), colorscale="Viridis"), compress_level=1)
    png_bytes(labelled_heatmap(r.weights[0, 0].copy(), r.tokens, r.tokens, "L0 H0", "Viridis"), compress_level=1)
    out[i] = (forward, time.perf_counter() - t0)


def round_of(model, texts: list[str], n_slots: int) -> list[tuple[float, float]]:
    """All texts' runs started together; (forward done, images drawn) per run, in order of finishing."""
    slots, out = threading.BoundedSemaphore(n_slots), [None] * len(texts)
    t0 = time.perf_counter()
    threads = [threading.Thread(target=one_run, args=(model, t, slots, t0, out, i)) for i, t in enumerate(texts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(out, key=lambda x: x[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs started together")
    ap.add_argument("--reps", type=int, default=5, help="rounds per number of slots (after one warm-up)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    gil.share_gil_sooner()  # as the server does (attnviz.server.configure)
    model = attnviz.load_model("minilm")
    pool = single_token_words(model.tokenizer)
    round_of(model, [make_text(pool, 512, f"warm-{i}") for i in range(args.runs)], args.runs)
    print("| slots | forward done, per run (s) | images drawn, per run (s) | last run done (s) |\n|---|---|---|---:|")
    for n_slots in range(1, args.runs + 1):
        rounds = [round_of(model, [make_text(pool, 512, f"{n_slots}-{rep}-{i}") for i in range(args.runs)], n_slots)
                  for rep in range(args.reps)]
        med = [[statistics.median(r[i][k] for r in rounds) for i in range(args.runs)] for k in (0, 1)]
        print(f"| {n_slots} | {', '.join(f'{x:.2f}' for x in med[0])} | {', '.join(f'{x:.2f}' for x in med[1])} "
              f"| {med[1][-1]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
