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

A process serving many people (the Streamlit server) also bounds how much large work goes at once
(:func:`limit_work`): a model run and a computation of heads from a result's queries and keys (an overview, a
rollout: tens of MB of weights for a few tenths of a second) each take one of the process's work slots
(:func:`work_slot`). On 2 cores, eight such computations at once finish no sooner than two at a time, and each holds
its own transient weights meanwhile. A library user's process has no limit unless it asks for one.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

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


_slots: threading.BoundedSemaphore | None = None
_around: Callable[[], AbstractContextManager[object]] = nullcontext
_held = threading.local()


def limit_work(slots: int | None, around: Callable[[], AbstractContextManager[object]] = nullcontext) -> None:
    """At most ``slots`` model runs and head computations at once in this process (:func:`work_slot`); None: no
    limit (the default). ``around()``: a context each slot's wait and work go in (a server's
    :func:`attnviz.server.allocator.burst`: the heap is given back when the last of them ends). Set it before the
    work starts (a server: once, at import of its pages)."""
    global _slots, _around
    _slots = None if slots is None else threading.BoundedSemaphore(slots)
    _around = around


@contextmanager
def work_slot() -> Iterator[None]:
    """Hold one of the process's work slots for the body (waiting for one if all are taken; at once without a
    limit). A thread that holds one already (a model run that makes its overview as it goes) does not take a
    second."""
    slots = _slots
    if slots is None or getattr(_held, "depth", 0):
        _held.depth = getattr(_held, "depth", 0) + 1
        try:
            yield
        finally:
            _held.depth -= 1
        return
    with _around(), slots:
        _held.depth = 1
        try:
            yield
        finally:
            _held.depth = 0
