"""The server's memory under load without browsers: the pages' own work replayed in one process, as the server does it.

``bench/load.py`` needs eight Chromium contexts and ~6 minutes; this script runs the same pages' scripts through
Streamlit's AppTest (the real page modules, models, caches and process settings, each session a thread of this
process, as in the server) and samples this process's resident memory every 50 ms. Phases, as in ``load.py``: a
warm-up (the Home page's models, each page once), one session alone, then ``--sessions`` at once. Each session,
``--reps`` times: the Text page runs its own 512-token text, the Image page takes its own picture (a distinct crop of
an example photo), the Mechanisms page changes its number of heads (1 <-> 3). With ``--think S`` each session pauses
0-2S seconds (drawn from ``--seed``) before each action.

Prints per phase the peak resident memory (``VmRSS``, as ``load.py`` samples the server) and where the memory is
after it, and at the end what the highest sample was made of: anonymous and ``file_shared`` (file-backed, and the
results' own shared mappings) from ``/proc/self/smaps_rollup``, glibc's heap in use and free (``mallinfo2``) and the
result cache's bytes. Browsers, websockets and Tornado are not replayed (a few MB in the server). Asserts nothing.

Usage::

    .venv/bin/python bench/memory_replay.py --sessions 8 --reps 2
    ATTNVIZ_MALLOC=0 .venv/bin/python bench/memory_replay.py --sessions 8 --reps 2   # without the malloc setting
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import contextlib  # noqa: E402

from attnviz import server  # noqa: E402
from attnviz.server import allocator  # noqa: E402

if os.environ.get("REPLAY_MMAP_MB"):  # an experiment: other malloc thresholds (REPLAY_TRIM_MB 0: glibc's trimming)
    _trim = int(os.environ.get("REPLAY_TRIM_MB", allocator.TRIM_THRESHOLD >> 20)) << 20
    allocator.limit_heap_growth(int(os.environ["REPLAY_MMAP_MB"]) << 20, _trim or None)
if os.environ.get("REPLAY_ARENAS"):
    allocator.ARENA_MAX = int(os.environ["REPLAY_ARENAS"])
SETTINGS = server.configure()

from streamlit import config as st_config  # noqa: E402
from streamlit.runtime import Runtime  # noqa: E402
from streamlit.testing.v1 import AppTest, app_test  # noqa: E402

# AppTest sets ``global.appTest`` around each run and puts back what it found: runs in several threads at once then
# switch it off under each other (pages came back without their elements). Set once for the whole process instead.
st_config.set_option("global.appTest", True)
app_test.patch_config_options = lambda _options: contextlib.nullcontext()
# Each AppTest run installs a mock Runtime of its own and removes it at its end, under the other threads' runs. The
# first one stays, shared by every session (as the server's one Runtime: one media file manager for all).
_RUNTIME: list[Runtime] = []


def _shared_runtime(cls: type[Runtime]) -> Runtime:
    if not _RUNTIME and cls._instance is not None:
        _RUNTIME.append(cls._instance)
    if not _RUNTIME:
        raise RuntimeError("Runtime hasn't been created!")
    return _RUNTIME[0]


Runtime.instance = classmethod(_shared_runtime)
Runtime.exists = classmethod(lambda cls: bool(_RUNTIME) or cls._instance is not None)

from bench.common import make_text, photo_variant, single_token_words  # noqa: E402
from bench.server_probe import memprobe  # noqa: E402

TIMEOUT = 300
MB = 2**20
PAGES = os.environ.get("REPLAY_PAGES", "text,image,mechanisms").split(",")
"""An experiment: the pages each round visits (``REPLAY_PAGES=text``: the Text page's runs alone)."""


def rollup() -> dict[str, int]:
    """``/proc/self/smaps_rollup`` in bytes."""
    out = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        p = line.split()
        if len(p) == 3 and p[2] == "kB":
            out[p[0].rstrip(":")] = int(p[1]) * 1024
    return out


def vm_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def mallinfo() -> dict[str, int]:
    """glibc's heap (all arenas): in use, free, and blocks mapped on their own; {} elsewhere."""
    info = memprobe.mallinfo()
    return {k: info[k] for k in ("heap_used", "heap_free", "mapped") if k in info}


class Sampler(threading.Thread):
    """VmRSS every ``every`` seconds, and what the largest sample so far was made of (:func:`where`)."""

    def __init__(self, every: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.every, self.samples, self.stop = every, [], threading.Event()
        self.at_peak: dict[str, float] = {}

    def run(self) -> None:
        while not self.stop.is_set():
            rss = vm_rss()
            if rss > max((r for _, r in self.samples), default=0):
                self.at_peak = where()
            self.samples.append((time.monotonic(), rss))
            time.sleep(self.every)

    def peak(self, t0: float, t1: float) -> int:
        return max((r for t, r in self.samples if t0 <= t <= t1), default=0)


def ok(at: AppTest, what: str) -> None:
    if at.exception or at.error:
        raise RuntimeError(f"{what}: {[e.value for e in at.exception] + [e.value for e in at.error]}")


class Session:
    """One person: their Text, Image and Mechanisms pages (an AppTest each, kept for the session's life, as a
    Streamlit session keeps its pages' state)."""

    def __init__(self, sid: int, texts: list[str], pictures: list[Path], think: float, seed: int) -> None:
        self.sid, self.texts, self.pictures, self.think = sid, texts, pictures, think
        self.rng = random.Random(f"{seed}-{sid}")
        self.text = AppTest.from_file(str(ROOT / "pages/1_Text.py"), default_timeout=TIMEOUT)
        self.image = AppTest.from_file(str(ROOT / "pages/2_Image.py"), default_timeout=TIMEOUT)
        self.mech = AppTest.from_file(str(ROOT / "pages/3_Mechanisms.py"), default_timeout=TIMEOUT)
        self.heads = 1

    def open(self) -> None:
        """Visit the three pages (each script runs once, the Text and Image pages on their examples)."""
        for at in (self.text, self.image, self.mech):
            ok(at.run(), f"session {self.sid} visit")

    def pause(self) -> None:
        if self.think:
            time.sleep(self.rng.uniform(0, 2 * self.think))

    def round(self, rep: int) -> None:
        if "text" in PAGES:
            self.pause()
            self.text.text_area(key="text_input").set_value(self.texts[rep])
            next(b for b in self.text.button if b.label == "Run").click()
            ok(self.text.run(), f"session {self.sid} text run")
        if "image" in PAGES:
            self.pause()
            path = self.pictures[rep]
            self.image.file_uploader(key="image_upload").set_value((path.name, path.read_bytes(), "image/jpeg"))
            ok(self.image.run(), f"session {self.sid} image upload")
        if "mechanisms" in PAGES:
            self.pause()
            self.heads = 3 if self.heads == 1 else 1
            self.mech.number_input(key="mech_heads").set_value(self.heads)
            ok(self.mech.run(), f"session {self.sid} mechanisms change")


def home_page() -> None:
    """What the Home page loads (its links need a real server's navigation): the default models, as its
    :func:`attnviz.web.runs.warm_up` does in the background."""
    import ast
    import inspect

    from attnviz.web import home, runs

    calls = [n for n in ast.walk(ast.parse(inspect.getsource(home.main)))
             if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "warm_up"]
    for call in calls:
        for arg in call.args:
            runs.get_model(ast.literal_eval(arg))


def phase(sessions: list[Session], reps: int) -> float:
    """Every session's rounds, the sessions at once (a thread each); wall seconds."""
    errors: list[BaseException] = []

    def go(s: Session) -> None:
        try:
            for rep in range(reps):
                s.round(rep)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t0 = time.monotonic()
    threads = [threading.Thread(target=go, args=(s,), name=f"session-{s.sid}") for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.monotonic() - t0


def where() -> dict[str, float]:
    from attnviz.web import runs

    r = rollup()
    return {"rss": r["Rss"] / MB, "anon": r["Anonymous"] / MB, "file_shared": (r["Rss"] - r["Anonymous"]) / MB,
            **{k: v / MB for k, v in mallinfo().items()}, "results": runs.RESULTS.bytes / MB,
            "result_entries": len(runs.RESULTS)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--single-reps", type=int, default=1)
    ap.add_argument("--think", type=float, default=0.0, metavar="S")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--out", type=Path, default=None, help="write the figures and RSS samples as JSON")
    args = ap.parse_args(argv)

    from attnviz.web import runs

    sampler = Sampler()
    sampler.start()
    t_start = time.monotonic()
    figures: dict = {"settings": SETTINGS, "args": {k: str(v) for k, v in vars(args).items()}, "phases": {}}
    tokenizer = runs.get_model("minilm").tokenizer
    pool = single_token_words(tokenizer)
    tmp = Path(tempfile.mkdtemp(prefix="attnviz-memory-"))
    n = args.sessions + 2
    texts = [[make_text(pool, args.tokens, f"s{s}-r{r}") for r in range(max(args.reps, args.single_reps))]
             for s in range(n)]
    pictures = []
    for s in range(n):
        pictures.append([])
        for r in range(max(args.reps, args.single_reps)):
            path = tmp / f"memory-s{s:02d}-r{r}.jpg"
            photo_variant(s * 10 + r, path)
            pictures[s].append(path)

    plan = {"warm-up": ([0], 1), "single": ([1], args.single_reps),
            "load": (list(range(2, 2 + args.sessions)), args.reps)}
    for name, (sids, reps) in plan.items():
        sessions = [Session(s, texts[s], pictures[s], 0.0 if name == "warm-up" else args.think, args.seed)
                    for s in sids]
        t0 = time.monotonic()
        if name == "warm-up":
            home_page()
        for s in sessions:  # one after another: AppTest's first run of a page is not safe in parallel
            s.open()
        wall = phase(sessions, reps)
        t1 = time.monotonic()
        figures["phases"][name] = {"sessions": len(sids), "reps": reps, "wall_s": wall,
                                   "peak_rss_mb": sampler.peak(t0, t1) / MB, "after": where()}
        print(f"{name}: {len(sids)} session(s) x {reps}: {wall:.1f} s, peak RSS {sampler.peak(t0, t1) / MB:.0f} MB; "
              "after: " + ", ".join(f"{k} {v:.0f}" for k, v in where().items()), flush=True)
        del sessions
    sampler.stop.set()
    sampler.join()
    peak = max(r for _, r in sampler.samples)
    figures["peak_rss_mb"] = peak / MB
    figures["rss_samples"] = [(round(t - t_start, 2), r) for t, r in sampler.samples[::10]]
    print(f"settings {SETTINGS}; peak RSS {peak / MB:.0f} MB ({peak / 2**30:.2f} GiB); at the peak: "
          + ", ".join(f"{k} {v:.0f}" for k, v in sampler.at_peak.items()))
    figures["at_peak_mb"] = sampler.at_peak
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    os._exit(main())
