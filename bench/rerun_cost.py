"""The server's own time for an Image-page rerun, without a browser (Streamlit's ``AppTest``, one process).

Every widget change reruns the whole page, and under load every session's reruns share the same cores. Two
kinds are timed on the page's default example (dinov2-small, "cat"), after a first run that loads the model:

cached rerun   the page again with nothing new to compute (results and grids come from the caches): what is
               left is the per-rerun work, i.e. drawing the focused head, the raw heatmap and the across-layers
               overlays, encoding them, and Streamlit's own handling of every element.
patch change   "A patch" as the query, then a new patch row each time: the all-heads and per-layer grids and
               the rollout are drawn anew.

Usage::

    .venv/bin/python bench/rerun_cost.py            # 8 cached reruns, 6 patch changes (~30 s)

Prints the median and the fastest of each.
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "pages" / "2_Image.py"
TIMEOUT_S = 300


def timed(step) -> float:
    """Seconds ``step()`` took."""
    t = time.perf_counter()
    step()
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=8, help="cached reruns (patch changes: reps - 2)")
    args = ap.parse_args(argv)
    from streamlit.testing.v1 import AppTest

    for name in list(logging.root.manager.loggerDict):  # "no runtime" warnings: expected outside a server
        if name.startswith("streamlit"):
            logging.getLogger(name).setLevel(logging.ERROR)

    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT_S).run()
    if at.exception:
        print(f"the page failed: {at.exception}", file=sys.stderr)
        return 1
    cached = [timed(at.run) for _ in range(args.reps)]
    at.radio(key="image_query_kind").set_value("A patch").run()
    rows = at.number_input(key="image_row")
    patch = [timed(lambda i=i: at.number_input(key="image_row").set_value(i).run())
             for i in range(1, min(args.reps - 2, int(rows.max)) + 1)]
    for name, times in (("cached rerun", cached), ("patch change", patch)):
        print(f"{name}: median {statistics.median(times):.3f} s, fastest {min(times):.3f} s (n={len(times)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
