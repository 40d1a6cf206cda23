"""The server's memory, broken down, for ``bench/load.py --memlog`` (on the benchmark server's ``PYTHONPATH`` only).

When ``ATTNVIZ_BENCH_MEMLOG`` names a file, a thread writes one JSON line every ``ATTNVIZ_BENCH_MEMLOG_S`` seconds
(default 2): resident memory split into anonymous and file-backed (``/proc/self/smaps_rollup``), glibc malloc's
view (``mallinfo2``: heap in use and free, mapped blocks), the result cache's bytes and entries
(:data:`attnviz.web.runs.RESULTS`), and every ``ATTNVIZ_BENCH_MEMLOG_DETAIL_S`` seconds (default 20) the resident
memory per mapping (``/proc/self/smaps``, grouped by library; unnamed ones split into glibc's heaps for threads and
the rest), the bytes in Python's object arenas and Streamlit's own byte counts (``st.cache_data``
per function, media files, uploads, session state).
"""
from __future__ import annotations

import collections
import ctypes
import json
import os
import re
import sys
import threading
import time


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                 "fsmblks", "uordblks", "fordblks", "keepcost")]


def rollup() -> dict[str, int]:
    out = {}
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            p = line.split()
            if len(p) == 3 and p[2] == "kB":
                out[p[0].rstrip(":")] = int(p[1]) * 1024
    return out


def mallinfo() -> dict[str, int]:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
        m = libc.mallinfo2()
    except (OSError, AttributeError):
        return {}
    return {"heap": m.arena, "heap_used": m.uordblks, "heap_free": m.fordblks, "mapped": m.hblkhd,
            "mapped_blocks": m.hblks}


def by_mapping(top: int = 20) -> list[tuple[str, int, int]]:
    """(mapping group, resident bytes, anonymous bytes), largest first."""
    rss, anon = collections.Counter(), collections.Counter()
    name = "[anon]"
    with open("/proc/self/smaps") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                parts = line.split(None, 5)
                name = parts[5].strip() if len(parts) > 5 else _anon_kind(int(parts[0].split("-")[0], 16))
                m = re.search(r"site-packages/([^/]+)", name)
                name = "site-packages/" + m.group(1) if m else name
                name = "[stack]" if name.startswith("[stack") else name
            elif line.startswith("Rss:"):
                rss[name] += int(line.split()[1]) * 1024
            elif line.startswith("Anonymous:"):
                anon[name] += int(line.split()[1]) * 1024
    return [(k, v, anon[k]) for k, v in rss.most_common(top)]


def _anon_kind(start: int) -> str:
    """An unnamed mapping: one of glibc's heaps for threads (each mapped at a multiple of 64 MiB), or other anonymous
    memory (Python's object arenas, thread stacks, buffers mapped on their own)."""
    return "[anon: malloc thread heaps]" if start % (64 << 20) == 0 else "[anon: other]"


def pymalloc_bytes() -> int:
    """Bytes in the arenas of Python's object allocator (``sys._debugmallocstats``, which writes to file descriptor
    2: captured for the moment), or -1 if it cannot be read."""
    import tempfile

    with tempfile.TemporaryFile(mode="w+") as tmp:
        saved = os.dup(2)
        try:
            sys.stderr.flush()
            os.dup2(tmp.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        m = re.search(r"\d+ arenas \* \d+ bytes/arena\s*=\s*([\d,]+)", tmp.read())
    return int(m.group(1).replace(",", "")) if m else -1


def streamlit_bytes() -> dict[str, int]:
    try:
        from streamlit.runtime import Runtime

        stats = Runtime.instance().stats_mgr.get_stats(["cache_memory_bytes"])
    except Exception as e:  # noqa: BLE001 - a probe
        return {"error": repr(e)}
    out = collections.Counter()
    for s in stats.get("cache_memory_bytes", []):
        out[f"{s.category_name}:{s.cache_name}"] += s.byte_length
    return dict(out)


def sample(detail: bool) -> dict:
    r = rollup()
    rec = {"t": time.time(), "rss": r.get("Rss", 0), "anon": r.get("Anonymous", 0),
           "file": r.get("Rss", 0) - r.get("Anonymous", 0) - r.get("Shmem", 0), **mallinfo()}
    runs = sys.modules.get("attnviz.web.runs")
    if runs is not None:
        rec["results"], rec["result_entries"] = runs.RESULTS.bytes, len(runs.RESULTS)
    rec["threads"] = threading.active_count()
    if detail:
        rec["mappings"] = by_mapping()
        rec["pymalloc"] = pymalloc_bytes()
        rec["streamlit"] = streamlit_bytes()
    return rec


def start(path: str) -> None:
    every = float(os.environ.get("ATTNVIZ_BENCH_MEMLOG_S") or 2)
    detail_every = float(os.environ.get("ATTNVIZ_BENCH_MEMLOG_DETAIL_S") or 20)

    def loop() -> None:
        out, last = open(path, "a", buffering=1), 0.0
        while True:
            now = time.time()
            detail = now - last >= detail_every
            if detail:
                last = now
            try:
                out.write(json.dumps(sample(detail)) + "\n")
            except Exception as e:  # noqa: BLE001 - a probe never stops the server
                out.write(json.dumps({"t": now, "error": repr(e)}) + "\n")
            time.sleep(every)

    threading.Thread(target=loop, name="attnviz-memprobe", daemon=True).start()
