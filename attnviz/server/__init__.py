"""Process settings of the attnviz server, applied only by an explicit :func:`configure` (``app.py`` calls it once).

Importing :mod:`attnviz` (or any module outside ``attnviz.server`` and ``attnviz.web``) changes nothing in the
process: no environment variable, no malloc option, no GIL switch interval. A tool or notebook that imports the
library keeps its own settings; the Streamlit server asks for these:

- ``malloc`` (:mod:`attnviz.server.allocator`): glibc malloc maps big buffers on their own, uses two arenas and gives
  the free heap back after a burst of runs. Decided by ``bench/memory_replay.py`` and ``bench/load.py`` (RSS with
  eight sessions: re-measured with today's results of queries and keys, peak 1.62-1.66 GiB without it, 1.35-1.46 GiB
  with it, and about 0.2 GB less once they are idle; again with the default models on attnviz's own modules and a
  160 MB result cache, 1.20-1.28 GiB without, 1.10 with) and ``bench/heap_reuse.py`` (page faults per run).
- ``gil`` (:mod:`attnviz.server.gil`): a 1 ms GIL switch interval and PNGs encoded in one block. Decided by
  ``bench/forward_contention.py`` (PNG encoding beside busy threads) and ``bench/load.py`` (latency under load).

Each can be switched off for a before/after measurement, by argument or by environment variable
(``ATTNVIZ_MALLOC=0``, ``ATTNVIZ_GIL=0``; an argument wins over the variable).

OpenMP's passive waiting (``OMP_WAIT_POLICY=PASSIVE``) was a third setting until short runs computed on one thread
(:mod:`attnviz.models.threads`): ``bench/forward_contention.py`` then showed no gain from it (a 512-token MiniLM run
beside busy cores 0.42 s with libgomp's default, 0.59 s passive; DINOv2 0.36 / 0.38 s), so it went.
"""
from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)

SETTINGS = ("malloc", "gil")
"""The switchable settings, in the order :func:`configure` applies them."""

_applied: dict[str, bool] | None = None
_lock = threading.Lock()


def enabled(name: str, choice: bool | None = None) -> bool:
    """Whether setting ``name`` is asked for: ``choice`` if given, else environment ``ATTNVIZ_<NAME>`` (``0``,
    ``false``, ``no`` or ``off`` turn it off; on by default)."""
    if choice is not None:
        return bool(choice)
    return os.environ.get(f"ATTNVIZ_{name.upper()}", "1").strip().lower() not in ("0", "false", "no", "off")


def configure(malloc: bool | None = None, gil: bool | None = None) -> dict[str, bool]:
    """Apply the server's process settings, once per process (later calls return the first call's outcome).

    Args:
        malloc, gil: turn one setting on or off; None: by its environment variable (see the module).
    Returns:
        Setting name -> whether it took effect in this process.
    """
    global _applied
    with _lock:
        if _applied is not None:
            return dict(_applied)
        applied = {}
        if enabled("malloc", malloc):
            from attnviz.server.allocator import limit_heap_growth

            applied["malloc"] = limit_heap_growth()
        else:
            applied["malloc"] = False
        if enabled("gil", gil):
            from attnviz.server.gil import share_gil_sooner

            share_gil_sooner()
            applied["gil"] = True
        else:
            applied["gil"] = False
        log.info("server settings: %s", ", ".join(f"{k} {'on' if v else 'off'}" for k, v in applied.items()))
        _applied = applied
        return dict(applied)
