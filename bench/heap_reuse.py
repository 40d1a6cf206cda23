"""What the server's malloc settings cost a 512-token MiniLM forward pass: page faults and system time.

The server keeps freed buffers under 32 MB in the heap while model runs go on and gives them back when the last
run of a burst ends (:mod:`attnviz.server.allocator`). Before, every buffer of 4 MB or more was mapped on its own and
unmapped when freed, so each run faulted all of them in afresh. This script applies one setting to its own
process (``--mmap-mb``, ``--trim-mb``: 0 leaves glibc's trimming, as before), then runs ``--together`` forward
passes at once in threads, as the server's sessions do, ``--reps`` times after a warm-up; when ``--trim-mb`` keeps
the heap, each run is part of a burst (:func:`attnviz.server.allocator.burst`) that gives it back at its end. Prints the
median wall time of a burst, the process's user and system CPU seconds per run, its minor page faults per run, and
how far its resident memory rose above the burst's start at the peak (Linux ``VmHWM``, reset before each burst;
the runs' results included). Asserts nothing.

Usage::

    .venv/bin/python bench/heap_reuse.py                          # the server's settings: 32 MB, heap kept
    .venv/bin/python bench/heap_reuse.py --mmap-mb 4 --trim-mb 0  # the settings before
    .venv/bin/python bench/heap_reuse.py --together 2
"""
from __future__ import annotations

import argparse
import contextlib
import resource
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import attnviz  # noqa: E402
from attnviz.server import allocator  # noqa: E402
from bench.common import make_text, single_token_words  # noqa: E402


def status_mb(field: str) -> float:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_burst(model, texts: list[str], keep_heap: bool) -> tuple[float, float, float, int, float]:
    """``texts`` run at once, each in a thread; wall seconds, user and system CPU seconds, minor faults, and the peak
    rise of resident memory (MB)."""
    def run(text: str) -> None:  # as attnviz.ui.limited runs it, when the heap is kept
        with allocator.burst() if keep_heap else contextlib.nullcontext():
            model.run(text=text)

    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
    rss0 = status_mb("VmRSS")
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    threads = [threading.Thread(target=run, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    return (wall, r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime, r1.ru_minflt - r0.ru_minflt,
            status_mb("VmHWM") - rss0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mmap-mb", type=int, default=allocator.MMAP_THRESHOLD >> 20)
    ap.add_argument("--trim-mb", type=int, default=allocator.TRIM_THRESHOLD >> 20,
                    help="free heap kept on each free (0: glibc's trimming, the heap is not kept)")
    ap.add_argument("--glibc", action="store_true", help="no malloc setting at all: glibc's defaults")
    ap.add_argument("--together", type=int, default=1, help="forward passes at once")
    ap.add_argument("--reps", type=int, default=9)
    args = ap.parse_args(argv)
    keep = args.trim_mb > 0 and not args.glibc
    if not args.glibc and not allocator.limit_heap_growth(args.mmap_mb << 20, args.trim_mb << 20 if keep else None):
        print("cannot apply malloc settings here (glibc only)", file=sys.stderr)
        return 2
    model = attnviz.load_model("minilm")
    pool = single_token_words(model.tokenizer)
    run_burst(model, [make_text(pool, 512, f"warm-{i}") for i in range(args.together)], keep)
    rows = [run_burst(model, [make_text(pool, 512, f"{rep}-{i}") for i in range(args.together)], keep)
            for rep in range(args.reps)]
    n = args.together
    wall, user, sys_s, faults, peak = (statistics.median(r[k] for r in rows) for k in range(5))
    heap = f"kept until the burst ends (top: {args.trim_mb} MB)" if keep else "trimmed by glibc"
    setting = "glibc's defaults" if args.glibc else f"mmap threshold {args.mmap_mb} MB, heap {heap}"
    print(f"{setting}; "
          f"{n} at once, median of {args.reps}: burst {wall:.3f} s; per run user {user / n:.3f} s, "
          f"system {sys_s / n:.3f} s, minor faults {faults / n:,.0f}; resident memory rose at most {peak:.0f} MB "
          f"({n} results of {model.run(text=make_text(pool, 512, 'size')).nbytes / 2**20:.1f} MB included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
