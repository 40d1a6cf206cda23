"""The p95 of several ``bench/load.py`` runs taken together, beside each run's own.

One run gives 8 samples per action alone and 24 with eight sessions: its p95 is about the slowest of the first and
the second-slowest of the second, and between runs of the same code it moved by more than any change did. Pooling
the runs of one code and one setting (same sessions, rounds, pauses, niceness, browsers) gives the p95 of 3-5 times
as many actions. Runs of different ``--seed`` (other patterns of pauses, so other collisions) pool: the seed is
not part of the setting.

Usage::

    .venv/bin/python bench/load_pool.py bench/results/run1.json bench/results/run2.json ...

Prints a Markdown table: per action, each run's p95 ratio, then the pooled p95 alone and with N sessions, their
ratio and whether it meets the target (``bench/load.py``'s ``TARGETS``); then the N-session actions' median latency
by how many other sessions' actions overlapped them.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import percentile  # noqa: E402
from bench.load import ACTIONS, TARGETS, overlap_table  # noqa: E402

SETTING = {"sessions": None, "reps": None, "single_reps": None, "think": None, "client_nice": None,
           "browsers": "shared", "quiet_ms": None}
"""Arguments that must agree for runs to be pooled, with their value in runs recorded before the option existed."""


def latencies(run: dict, phase: str, action: str) -> list[float]:
    """The successful actions' latencies (s) of one phase of one run."""
    return [r["latency_s"] for r in run["phases"][phase]["records"]
            if r["action"] == action and r["latency_s"] is not None]


def ratio(run: dict, action: str) -> float | None:
    """One run's p95 with N sessions over its p95 alone (None when a phase has no successful action)."""
    alone, loaded = percentile(latencies(run, "single", action), 95), percentile(latencies(run, "load", action), 95)
    return loaded / alone if alone and loaded else None


def pooled(runs: list[dict]) -> str:
    """The Markdown table."""
    n = runs[0]["sessions"]
    lines = [f"| action | p95 ratio per run | 1 session: n, p95 (s) | {n} sessions: n, p95 (s) | pooled ratio |",
             "|---|---|---:|---:|---:|"]
    for action in ACTIONS:
        alone = [x for run in runs for x in latencies(run, "single", action)]
        loaded = [x for run in runs for x in latencies(run, "load", action)]
        p_alone, p_loaded = percentile(alone, 95), percentile(loaded, 95)
        per_run = ", ".join("–" if (r := ratio(run, action)) is None else f"{r:.1f}×" for run in runs)
        if p_alone and p_loaded:
            met = "PASS" if p_loaded <= TARGETS["p95_ratio"] * p_alone else "MISS"
            verdict = f"{p_loaded / p_alone:.1f}× {met}"
        else:
            verdict = "–"
        lines.append(f"| {action} | {per_run} | {len(alone)}, {p_alone or 0:.2f} | {len(loaded)}, "
                     f"{p_loaded or 0:.2f} | {verdict} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+", help="JSON files written by bench/load.py (--out)")
    args = ap.parse_args(argv)
    runs = [json.loads(p.read_text()) for p in args.runs]
    settings = {p.name: tuple(run["args"].get(k) or old for k, old in SETTING.items())
                for p, run in zip(args.runs, runs, strict=True)}
    if len(set(settings.values())) > 1:
        print("cannot pool runs of different settings (" + ", ".join(SETTING) + "):", file=sys.stderr)
        for name, setting in settings.items():
            print(f"  {name}: {setting}", file=sys.stderr)
        return 2
    if any("single" not in run["phases"] or "load" not in run["phases"] for run in runs):
        print("every run needs its single-session and its load phase", file=sys.stderr)
        return 2
    heads = {str(run.get("environment", {}).get("git_head") or "?")[:7] for run in runs}
    print(f"{len(runs)} runs pooled: " + ", ".join(p.name for p in args.runs)
          + f"; code {', '.join(sorted(heads))}" + (" (different commits!)" if len(heads) > 1 else "") + "\n")
    print(pooled(runs))
    print(f"\n{runs[0]['sessions']} sessions, all runs: median latency by how many other sessions' actions were in "
          "progress during the action:\n")
    print("\n".join(overlap_table([r for run in runs for r in run["phases"]["load"]["records"]
                                   if r["action"] in ACTIONS])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
