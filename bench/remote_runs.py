"""What a model run costs when it goes to a Ray actor (``ATTNVIZ_RAY_ADDRESS``) instead of running in the server.

For MiniLM texts of 32, 128 and 512 tokens: the time of ``run`` in this process (torch on this process's threads)
and through :class:`attnviz.remote.RemoteModel` (one actor of one CPU, so torch on one thread; the result comes back
pickled through Ray's object store), median of ``--reps`` after one untimed run, and the result's size. Also the
same on one torch thread here, which separates the thread count from the transport.

Needs a running Ray cluster (``ray start --head ...``; see docs/deploy.md)::

    .venv/bin/python bench/remote_runs.py --address 127.0.0.1:6379 [--reps 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import make_text, single_token_words  # noqa: E402

SIZES = (32, 128, 512)


def timed(fn, reps: int) -> float:
    fn()  # untimed: the first run of a shape
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--address", required=True, help="the Ray cluster (auto, host:port, ray://host:port)")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args(argv)

    import torch

    import attnviz
    from attnviz import remote

    local = attnviz.load_model("minilm")
    pool = single_token_words(local.tokenizer)
    texts = {n: make_text(pool, n, "remote") for n in SIZES}
    remote.connect(args.address)
    proxy = remote.RemoteModel("minilm", size=1)
    try:
        print(f"load average {os.getloadavg()[0]:.1f}; torch threads here {torch.get_num_threads()}, "
              "in the actor 1")
        print(f"{'tokens':>6} {'result MB':>10} {'here s':>8} {'here 1 thread s':>16} {'Ray actor s':>12}")
        for n, text in texts.items():
            result = local.run(text=text)
            assert result.n_tokens == n, (result.n_tokens, n)
            here = timed(lambda t=text: local.run(text=t), args.reps)
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                one = timed(lambda t=text: local.run(text=t), args.reps)
            finally:
                torch.set_num_threads(threads)
            far = timed(lambda t=text: proxy.run(text=t).weights, args.reps)
            print(f"{n:>6} {result.weights.nbytes / 2**20:>10.1f} {here:>8.3f} {one:>16.3f} {far:>12.3f}")
    finally:
        remote.shutdown_pool("minilm", 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
