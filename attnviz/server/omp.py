"""OpenMP threads that sleep while they wait instead of spinning (set before torch is imported).

torch runs its CPU kernels on an OpenMP team. GNU libgomp's default lets a thread that has finished its share spin
for a while before it sleeps. When other work wants the cores (other sessions' model runs and page scripts in the
server, other programs), the spinning takes CPU from the very threads it waits for. ``OMP_WAIT_POLICY=PASSIVE``
makes waiting threads sleep at once. Measured with ``bench/forward_contention.py`` on 2 cores, beside two threads
that keep both cores busy (traced forwards, median of 7): a 512-token MiniLM run 0.65-0.75 s -> 0.30-0.34 s, a
DINOv2-S run 0.32-0.57 s -> 0.25-0.26 s; alone the two policies are within noise of each other.

libgomp reads the variable once, when torch loads it, so :func:`attnviz.server.configure` applies this before
anything imports ``torch``; an ``OMP_WAIT_POLICY`` already set is kept.
"""
from __future__ import annotations

import os
import sys

POLICY = "PASSIVE"


def prefer_passive_wait() -> bool:
    """Set ``OMP_WAIT_POLICY`` to :data:`POLICY` unless it is set or torch is already loaded. True if set here."""
    if "torch" in sys.modules or "OMP_WAIT_POLICY" in os.environ:
        return False
    os.environ["OMP_WAIT_POLICY"] = POLICY
    return True
