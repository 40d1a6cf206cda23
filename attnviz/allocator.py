"""Keep the server's heap from holding freed attention tensors (glibc only; elsewhere a no-op).

A 512-token run allocates and frees tens of 12-75 MB buffers. glibc's default malloc raises its mmap threshold
after the first such free, so later ones come from the heap, spread over one arena per script thread (up to
8 per core); freed, they stay in the process as fragmented free space. With 8 people at once that free space
reached 1.1 GB of a 3.7 GB server (measured with ``mallinfo2`` during ``bench/load.py``). A fixed threshold sends
every buffer of ``MMAP_THRESHOLD`` or more straight to the OS and back, and two arenas bound the spread. The price:
those buffers are faulted in fresh on every run, ~40 ms on a 512-token MiniLM forward pass (0.15 -> 0.19 s).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 4 * 2**20
"""Allocations of at least this many bytes are mapped and unmapped on their own (glibc's ``M_MMAP_THRESHOLD``);
setting it also turns off glibc's raising of the threshold."""
ARENA_MAX = 2
"""malloc arenas (glibc's ``M_ARENA_MAX``): threads share them instead of each growing its own."""

_done = False


def limit_heap_growth() -> bool:
    """Apply :data:`MMAP_THRESHOLD` and :data:`ARENA_MAX` to this process (once). True if glibc took them."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        log.info("no glibc mallopt: malloc settings left as they are")
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_ARENA_MAX, ARENA_MAX))
    if ok:
        log.info("malloc: buffers >= %d MB mapped on their own, %d arenas", MMAP_THRESHOLD >> 20, ARENA_MAX)
    else:
        log.warning("mallopt refused the settings: the heap may keep freed attention buffers")
    _done = ok
    return ok
