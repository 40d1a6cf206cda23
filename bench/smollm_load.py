"""SmolLM2-135M: load time from the GGUF file (cold) and from the converted cache (warm), and forward time.

Each load runs in a fresh Python process (so nothing is cached in memory), with ``ATTNVIZ_CACHE`` pointing at a
scratch folder: the first process converts the GGUF file and writes the cache, the next ones read it.
The forward time is ``model.run(text=...)`` (tokenize, forward with ``output_attentions``, stack to numpy) at
16, 128 and 512 tokens, median of ``--reps`` after one warm-up run. Prints figures; asserts nothing.

Usage::

    .venv/bin/python bench/smollm_load.py [--warm-runs 2] [--reps 5] [--threads N]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, statistics, sys, time
t0 = time.perf_counter()
import torch
if int(sys.argv[2]) > 0:
    torch.set_num_threads(int(sys.argv[2]))
import attnviz
t1 = time.perf_counter()
m = attnviz.load_model("smollm2-135m")
t2 = time.perf_counter()
out = {"import_s": t1 - t0, "load_s": t2 - t1, "threads": torch.get_num_threads(), "forward_s": {}}
reps = int(sys.argv[1])
for n in ([16, 128, 512] if reps else []):
    text = " ".join(["word"] * n)  # one token per word, no special tokens: n tokens (512 after truncation)
    m.run(text=text)
    times = []
    for _ in range(reps):
        t = time.perf_counter(); r = m.run(text=text); times.append(time.perf_counter() - t)
    out["forward_s"][r.n_tokens] = statistics.median(times)
print(json.dumps(out))
"""


def child(cache: Path, reps: int, threads: int) -> dict:
    env = {**os.environ, "ATTNVIZ_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", CHILD, str(reps), str(threads)], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warm-runs", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="attnviz-bench-cache-") as tmp:
        cold = child(Path(tmp), 0, args.threads)
        print(f"cold (GGUF -> float32, cache written): load {cold['load_s']:.1f} s (import {cold['import_s']:.1f} s)")
        for i in range(args.warm_runs):
            warm = child(Path(tmp), args.reps if i == args.warm_runs - 1 else 0, args.threads)
            print(f"warm #{i + 1} (from the cache): load {warm['load_s']:.2f} s (import {warm['import_s']:.1f} s)")
        for n, s in warm["forward_s"].items():
            print(f"forward {n:>3} tokens: {s * 1000:.0f} ms (median of {args.reps}, {warm['threads']} threads)")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
