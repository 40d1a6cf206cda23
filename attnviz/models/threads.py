"""How many threads a model's work computes with: one for a short input; for a long one, what torch is set to.

A short input's forward (the traced forward, up to 512 positions) and its heads are hundreds of small kernels; split
over two threads, each kernel waits for the slower one, and when the other core is busy (another session, the page's
drawing, a browser on the same machine) that wait is most of the work. Measured on this 2-core machine with
``bench/browser_latency.py --no-bertviz --sizes 128 --reps 8`` (three rounds, alternately): a short run on one thread
brings the Text page's Run -> all heads visible from 0.70-0.73 s to 0.61-0.63 s and the server's CPU per run from
0.38-0.41 s to 0.28-0.30 s. A long input's forward is a few large matrix products per layer and is left with torch's
own count (every core by default: a 1,871-token SmolLM2 run takes 11.6 s with two threads, 21 s with one; a Ray
actor, which Ray starts with one thread per CPU it holds, keeps its one).

torch's thread count belongs to the thread that sets it (and is the default of threads started later), so short work
sets one in its own thread and puts back what it found.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

SHORT_KEYS = 512
"""Inputs up to this many positions are short: their forward and heads compute on :data:`SHORT_THREADS`."""
SHORT_THREADS = 1


@contextmanager
def run_threads(short: bool) -> Iterator[None]:
    """Compute the body with :data:`SHORT_THREADS` in this thread (``short``; the count found is put back after),
    or with torch's count as it is (long work)."""
    if not short:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(SHORT_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)
