"""Keep the server's heap from holding freed attention buffers between runs (glibc only; elsewhere a no-op).

A 512-token MiniLM run allocates and frees tens of 12-75 MB buffers. glibc's default malloc raises its mmap threshold
after the first such free, so later ones come from the heap, spread over one arena per script thread (up to
8 per core); freed, they stay in the process as fragmented free space. With 8 people at once that free space
reached 1.1 GB of a 3.7 GB server (measured with ``mallinfo2`` during ``bench/load.py``). So the server bounds the
arenas to two and fixes the thresholds:

- Buffers of :data:`MMAP_THRESHOLD` (32 MB, glibc's largest) or more are mapped and unmapped on their own: a long
  SmolLM2 run's queries and keys. (What a result keeps is mapped on its own at any size, by
  :mod:`attnviz.models.mapped`, so that it never pins the heap.)
- Smaller ones (a layer's 12.6 MB of scores or weights) come from the heap, which keeps up to
  :data:`TRIM_THRESHOLD` of what is freed at its top: the next layer and the next run reuse it instead of faulting
  fresh pages in.
- :func:`burst` counts the work going on or waiting in the server's work slots (model runs, and heads computed from
  a result: :func:`attnviz.models.threads.work_slot`); when the last one ends, the free heap goes back to the OS
  (:func:`release_free_heap`). Model runs alone were counted until 2026-12-06: the heads computed after a run (the
  grid's overview) then left their free heap resident until the next run ended, and an idle server after
  ``bench/load.py`` kept ~1.0 GiB with 0.45 GB of glibc's heap free.

Mapping every buffer of 4 MB or more on its own, as before, cost each 512-token forward pass ~100,000 page faults
(0.19 s of system time beside 0.19 s of user time); with the heap reused it faults ~53,000 pages in (mostly its
75 MB result) and spends 0.10 s in the system (``bench/heap_reuse.py``, one run at a time).

Re-measured once results held queries and keys (9.6 MB) instead of weights (75 MB), eight sessions replayed by
``bench/memory_replay.py --sessions 8 --reps 2``: peak RSS 1.62-1.66 GiB with glibc's defaults, 1.35-1.46 GiB with
these settings; once idle, glibc's free heap 0.67-0.74 GB against 0.27-0.31 GB.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 32 * 2**20
"""Allocations of at least this many bytes are mapped and unmapped on their own (glibc's ``M_MMAP_THRESHOLD``, at
most 32 MB on 64-bit); setting it also turns off glibc's raising of the threshold."""
TRIM_THRESHOLD = 64 * 2**20
"""Free space at the top of a heap that ``free`` leaves in place (``M_TRIM_THRESHOLD``); beyond it the top goes back
to the OS at once. It is also the only way the heaps of threads other than the main one shrink from their top:
:func:`release_free_heap` (``malloc_trim``) gives back the free pages inside them, not their top. At 1 GiB (until
2026-12-06) those tops were never given back: over a ``bench/load.py`` run the script threads' heaps grew from 0.09
to 0.36 GB resident with about 0.2 GB in use (the server's memory log), and the peak with eight sessions was
0.99-1.09 GiB in four runs; at 64 MB they reached 0.30 GB and the peak 0.94 GiB. A run's page faults did not change
(``bench/heap_reuse.py --together 2 --trim-mb 64`` against ``--trim-mb 1024``, alternately: 5,600-6,700 each)."""
ARENA_MAX = 2
"""malloc arenas (glibc's ``M_ARENA_MAX``): threads share them instead of each growing its own."""

_done = False
_libc: ctypes.CDLL | None = None
_in_burst = 0
"""Model runs going on or waiting for a slot (:func:`burst`)."""
_burst_lock = threading.Lock()


def limit_heap_growth(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int | None = TRIM_THRESHOLD) -> bool:
    """Apply :data:`MMAP_THRESHOLD`, :data:`TRIM_THRESHOLD` and :data:`ARENA_MAX` to this process (once; other
    thresholds for ``bench/heap_reuse.py``, ``trim_threshold`` None: glibc's). True if glibc took them."""
    global _done, _libc
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt, libc.malloc_trim.argtypes = libc.mallopt, [ctypes.c_size_t]
    except (OSError, AttributeError):  # musl and others have no mallopt or malloc_trim
        log.info("no glibc mallopt: malloc settings left as they are")
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = [(M_MMAP_THRESHOLD, mmap_threshold), (M_ARENA_MAX, ARENA_MAX)]
    if trim_threshold is not None:
        settings.append((M_TRIM_THRESHOLD, trim_threshold))
    ok = all(mallopt(option, value) for option, value in settings)
    if ok:
        kept = f"up to {trim_threshold >> 20} MB of free heap kept at its top" if trim_threshold else "glibc's trimming"
        log.info("malloc: buffers >= %d MB mapped on their own, %s, %d arenas", mmap_threshold >> 20, kept, ARENA_MAX)
        _libc = libc
    else:
        log.warning("mallopt refused the settings: the heap may keep freed attention buffers")
    _done = ok
    return ok


def release_free_heap() -> None:
    """Give the heap's free pages back to the OS (``malloc_trim``), once :func:`limit_heap_growth` took effect."""
    if _libc is not None:
        _libc.malloc_trim(0)


@contextmanager
def burst() -> Iterator[None]:
    """One model run (or its wait for a slot) of a burst: freed buffers stay in the heap for the burst's other runs;
    when the last run of the burst ends, the free heap goes back to the OS."""
    global _in_burst
    with _burst_lock:
        _in_burst += 1
    try:
        yield
    finally:
        with _burst_lock:
            _in_burst -= 1
            last = _in_burst == 0
        if last:
            release_free_heap()
