"""Model runs for every page: the loaded models, the shared result cache, the run slots and the one input digest.

- Models: the registry keeps every loaded model for the life of the process (:func:`attnviz.models.load_model`),
  shared read-only by all sessions; :func:`get_model` takes registered names only (the built-in models and the
  folders of the local models folder, never a path) and turns a failed load into a message for people. There is
  no second copy in ``st.cache_resource``. With ``ATTNVIZ_RAY_ADDRESS`` set, the models are instead proxies of
  actor pools on that Ray cluster (:mod:`attnviz.remote`, one pool per model, shared by every server connected to
  it): :func:`obtain` is the one place that chooses, and nothing else changes.
- Results: :data:`RESULTS`, one process-wide cache bounded by bytes (:class:`attnviz.cache.BoundedCache`), keyed by
  ``(kind, model name, digest of the input)``; results are handed out without copying and never changed.
- Work slots: at most :data:`MODEL_RUN_SLOTS` model runs and computations of heads from a result at once
  (:func:`limited`, :func:`attnviz.models.threads.work_slot`); the others wait their turn.
- One digest names an input everywhere (cache keys, file names, flow rows): :func:`digest`.

A page never keeps a result beyond its script run: what a session keeps (download callables, widget callbacks)
names the run (:class:`TextRun`, :class:`ImageRun`) and fetches the result from :data:`RESULTS` when called.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import streamlit as st

from attnviz.cache import BoundedCache
from attnviz.models import AttentionModel, load_model, model_info, threads
from attnviz.models.registry import is_loaded
from attnviz.render.raster import fit_cell
from attnviz.result import AttentionResult
from attnviz.server import allocator

log = logging.getLogger(__name__)
T = TypeVar("T")

RESULT_CACHE_BYTES = int(os.environ.get("ATTNVIZ_RESULT_CACHE_MB", "160")) * 2**20
"""Attention results kept per process, shared by all sessions (environment ``ATTNVIZ_RESULT_CACHE_MB``, default
160). A result holds what its heads are computed from: 9.6 MB for a 512-token MiniLM text, 9.5 MB for a DINOv2
picture at 224 px, 49 MB for 512 SmolLM2 tokens, 193 MB for 2,048. Eight people each with a 512-token text and a
picture hold 8 * 19 MB = 153 MB: the bound keeps each one's current results, and little else (older ones go first).
A longer result than the bound (SmolLM2 at 4,096 tokens, 385 MB) is kept alone (:class:`attnviz.cache.BoundedCache`).
A result's buffers are mapped on their own (:mod:`attnviz.models.mapped`): an evicted result's memory goes back to
the OS at once. At 256 MB eight people's older results filled it too (247 MB in ``bench/memory_replay.py``, its peak
0.1 GiB above this bound's)."""
RESULT_TTL_S = 1800
"""Seconds a result (and anything derived from it) stays cached."""
DERIVED_ENTRIES = 12
"""Entry bound of the small ``st.cache_data`` caches derived from results (rollout, statistics, rendered PNGs)."""
MODEL_RUN_SLOTS = 2
"""Model runs and computations of heads from a result (an overview, a rollout) at once in this process
(:func:`attnviz.models.threads.limit_work`); more wait their turn. Each briefly holds 30-50 MB beyond its result (a
512-token MiniLM run, its grid's overview; a DINOv2 picture's maps), and on 2 cores eight at once finish no sooner
than two at a time. Each slot's wait and work are part of a burst (:func:`attnviz.server.allocator.burst`): when
the last one ends, the heap they left free goes back to the OS."""
threads.limit_work(MODEL_RUN_SLOTS, around=allocator.burst)


class ModelLoadError(ValueError):
    """A model could not be loaded. A ``ValueError``, so every page shows it like bad input, never as a traceback."""


class ModelRunError(ValueError):
    """A loaded model failed on an input (out of memory, a bug...). Shown like bad input, never as a traceback."""


def digest(*parts: str | bytes | None) -> str:
    """The SHA-256 (hex) naming an input: texts, a second text or None, a file's bytes. A cache key that cannot
    collide in practice; its first 12 characters name files."""
    h = hashlib.sha256()
    for p in parts:
        if p is None:
            h.update(b"\x00")
        else:
            h.update(b"\x01" + (p if isinstance(p, bytes) else p.encode("utf-8", "surrogatepass")))
        h.update(b"\x1f")
    return h.hexdigest()


def _cause(e: BaseException) -> str:
    """The exception's message for people: its text (or type), at most 300 characters, no final full stop."""
    detail = (str(e) or type(e).__name__).rstrip(".")
    return detail[:300] + "…" if len(detail) > 300 else detail


RAY_ADDRESS_ENV = "ATTNVIZ_RAY_ADDRESS"
"""Environment: a Ray cluster (``auto``, ``ray://host:10001``, ``host:6379``) to run the models on; unset or empty:
they run in this process."""
RAY_ACTORS_ENV = "ATTNVIZ_RAY_ACTORS"
"""Environment: actors in each model's pool on the cluster (default 1; each reserves one CPU)."""


def obtain(name: str) -> AttentionModel:
    """The model ``name`` as this server runs it: loaded in this process (the registry keeps it), or, with
    ``ATTNVIZ_RAY_ADDRESS`` set, a proxy whose runs go to the model's actor pool on that cluster (kept per process;
    the pool itself is shared by every process connected to the cluster). The one place the pages get a model."""
    address = os.environ.get(RAY_ADDRESS_ENV, "").strip()
    if not address:
        return load_model(name, allow_paths=False)
    model_info(name)  # registered names only, as in this process (never a path)
    with _REMOTE_LOCK:
        proxy = _REMOTE.get(name)
    if proxy is None:  # made outside the lock: a first load on the cluster can take a while
        from attnviz import remote
        from attnviz.models import local

        remote.connect(address)
        folder = os.environ.get(local.ENV)  # the actors find this server's local models folder at the same path
        proxy = remote.RemoteModel(name, size=int(os.environ.get(RAY_ACTORS_ENV) or 1),
                                   env={local.ENV: folder} if folder else None)
        with _REMOTE_LOCK:
            proxy = _REMOTE.setdefault(name, proxy)
    return proxy


_REMOTE: dict[str, AttentionModel] = {}
_REMOTE_LOCK = threading.Lock()


def get_model(name: str) -> AttentionModel:
    """The model ``name`` (:func:`obtain`), shared by all sessions of this process.

    Only registered names are taken: a built-in model or a folder of the local models folder
    (:mod:`attnviz.models.local`), never a path, so nothing a browser sends opens another directory.

    Raises:
        ModelLoadError: whatever loading raised (unknown name, missing package, broken file, an unreachable Ray
            cluster...), with the cause in the message. It is logged with its traceback; nothing failed is kept, so
            the next call tries again.
    """
    try:
        return obtain(name)
    except Exception as e:
        log.error("loading model %s failed", name, exc_info=True)
        raise ModelLoadError(f"The model {name!r} could not be loaded: {_cause(e)}. The other models still work; "
                             "the server log has the details.") from e


def get_local_model(name: str) -> AttentionModel:
    """The model ``name`` loaded in this process even when the pages' runs go to a Ray cluster: what needs the
    model's internals (gradients, value vectors, generation: :mod:`attnviz.web.explain`, the *Generation* tab) runs
    here. Registered names only, as :func:`get_model`.

    Raises:
        ModelLoadError: as :func:`get_model`.
    """
    if not os.environ.get(RAY_ADDRESS_ENV, "").strip():
        return get_model(name)
    try:
        return load_model(name, allow_paths=False)
    except Exception as e:
        log.error("loading model %s in this process failed", name, exc_info=True)
        raise ModelLoadError(f"The model {name!r} could not be loaded: {_cause(e)}. The other models still work; "
                             "the server log has the details.") from e


def load_with_progress(name: str) -> AttentionModel:
    """:func:`get_model` under a spinner with a running clock: a model's first load in a process can take ~20 s
    (SmolLM2 converts its GGUF file once); once loaded it returns at once and nothing is shown."""
    with _REMOTE_LOCK:
        ready = name in _REMOTE
    if ready or is_loaded(name):
        return get_model(name)
    with st.spinner(f"Loading {name}: once per server process; a first load can take ~20 s…", show_time=True):
        return get_model(name)


def warm_up(*names: str) -> None:
    """Load models in a background thread (once per process) so the first Run does not wait for them; the heap a
    load leaves free (its trace and check runs: ~80 MB for DINOv2-S) goes back to the OS after it (when the server's
    malloc setting is on)."""

    def load() -> None:
        for name in names:
            try:
                with allocator.burst():
                    obtain(name)
            except Exception:  # the page that needs it will show the error
                log.exception("warm-up of %s failed", name)

    with _WARM_LOCK:
        todo = [n for n in names if n not in _WARMED]
        _WARMED.update(todo)
    if todo:
        threading.Thread(target=load, name="attnviz-warm-up", daemon=True).start()


_WARMED: set[str] = set()
_WARM_LOCK = threading.Lock()


def grid_cell(model: AttentionModel) -> int:
    """Side of each head's thumbnail in the all-heads grid of ``model``'s results (a long run makes that overview
    as it goes)."""
    return fit_cell(model.n_layers)


def result_bytes(result: AttentionResult) -> int:
    """Memory a result holds (its own and its parts': what its heads are computed from, or stored weights)."""
    return result.nbytes


RESULTS: BoundedCache[AttentionResult] = BoundedCache(RESULT_CACHE_BYTES, RESULT_TTL_S, result_bytes)
"""Results of every page, keyed by (kind, model name, input digest); read-only, never copied."""


def limited(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """``fn(*args, **kwargs)`` (a model run) in one of the :data:`MODEL_RUN_SLOTS` (blocks until one is free); the
    last work of a burst (a run, or heads computed from a result) gives the free heap back to the OS (when the
    server's malloc setting is on).

    Raises:
        ValueError: as ``fn`` raised it (unusable input).
        ModelRunError: for anything else ``fn`` raised, logged with its traceback.
    """
    try:
        with threads.work_slot():
            return fn(*args, **kwargs)
    except ValueError:
        raise
    except Exception as e:
        log.error("model run failed", exc_info=True)
        raise ModelRunError(f"The model failed on this input: {_cause(e)}. Other inputs and models still "
                            "work; the server log has the details.") from e


@dataclass(frozen=True)
class TextRun:
    """A text run by name: what a session may keep (a download callable, a cache key) instead of the result."""

    model: str
    text: str
    pair: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """The run's key in :data:`RESULTS` (and of whatever is derived from it)."""
        return ("text", self.model, digest(self.text, self.pair))

    def result(self, progress: Callable[[int, int], None] | None = None) -> AttentionResult:
        """The cached result, or the model's run (``ValueError`` for unusable text is raised, not cached);
        ``progress(layers done, layers)`` is called as a long run goes (see :meth:`AttentionModel.run`)."""
        model = get_model(self.model)
        return RESULTS.get_or_compute(self.key, lambda: limited(model.run, text=self.text, text_pair=self.pair,
                                                                progress=progress, overview=grid_cell(model)))


@dataclass(frozen=True)
class ImageRun:
    """An image run by name: the model, the file's bytes (named by their digest) and the side the model reads it
    at (None: the model's default)."""

    model: str
    data: bytes = field(repr=False)
    data_digest: str
    image_size: int | None = None

    @classmethod
    def of(cls, model: str, data: bytes, image_size: int | None = None) -> ImageRun:
        """The run of ``model`` on the file ``data`` (at ``image_size`` px, for models that read several)."""
        return cls(model, data, digest(data), image_size)

    @property
    def key(self) -> tuple[str, str, str]:
        """The run's key in :data:`RESULTS` (and of whatever is derived from it)."""
        size = "" if self.image_size is None else f"@{self.image_size}"
        return ("image", self.model, self.data_digest + size)

    def result(self, progress: Callable[[int, int], None] | None = None) -> AttentionResult:
        """The cached result, or the model's run on the full-resolution file (``ValueError`` raised, not cached).
        A DINOv2 result holds its queries and keys: 12*6*2*257*64*4 B = 9.5 MB at 224 px; past 224 px also each
        layer's mean of heads, for rollout: 85 MB in all at 448 px (50 MB of means), 141 MB at 518 px."""
        return RESULTS.get_or_compute(self.key, lambda: limited(get_model(self.model).run, image=self.data,
                                                                image_size=self.image_size, progress=progress))


PROGRESS_AFTER_S = 1.0
"""A run's progress bar appears once it has taken this long (a bar for a sub-second run is only browser work: each
update is a message the page re-renders, and the browser shares the cores with the run on a small server)."""
PROGRESS_EVERY_S = 1.0
"""At most one update of the bar this often (and the last one). Each update is a message the page re-renders (with
the bar's transition); a replaced run stops at the next update, so this is also about how long it runs on after a
new Run (plus one layer). Measured with headless Chromium on the server's 2 cores while the page waited 8 s: no
bar 0.55 s of Chromium CPU, a bar updated 30 times 0.9-1.3 s, once a second 0.7 s; a spinner besides 0.6-0.8 s more."""


class Pacing:
    """When a run's progress is worth showing: not before :data:`PROGRESS_AFTER_S` from its start, then at most every
    :data:`PROGRESS_EVERY_S`, and its last layer."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock, self.start, self.shown = clock, clock(), None

    def __call__(self, done: int, total: int) -> bool:
        now = self.clock()
        if now - self.start < PROGRESS_AFTER_S:
            return False
        if self.shown is not None and now - self.shown < PROGRESS_EVERY_S and done < total:
            return False
        self.shown = now
        return True


def result_with_progress(run: TextRun | ImageRun) -> AttentionResult:
    """The run's result under a spinner, which gives way to a progress bar by layer once the model reports layers
    (long inputs: text past 512 tokens, images past 224 px) and the run has taken :data:`PROGRESS_AFTER_S` (one
    animation at a time: the browser shares the cores with the run on a small server). A new Run stops this one
    between two layers: the bar's update is where Streamlit stops a script that is replaced.

    Raises:
        ValueError: as ``run.result()``.
    """
    bar, due = None, Pacing()
    with contextlib.ExitStack() as spinner:
        spinner.enter_context(st.spinner(f"Running {run.model}…"))

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if not due(done, total):
                return
            if bar is None:
                spinner.close()
                bar = st.progress(0.0)
            bar.progress(done / total, text=f"Running {run.model}: layer {done} of {total}")

        result = run.result(progress=progress)
    if bar is not None:
        bar.empty()
    return result


@dataclass(frozen=True)
class IdsRun:
    """A run on token ids as they are (a prompt and its generated continuation, which need not tokenize back to
    the same ids), by name."""

    model: str
    ids: tuple[int, ...]

    @property
    def key(self) -> tuple[str, str, str]:
        """The run's key in :data:`RESULTS` (and of whatever is derived from it)."""
        return ("ids", self.model, digest(",".join(map(str, self.ids))))

    def result(self) -> AttentionResult:
        """The cached result, or the model's run on the ids (``ValueError`` raised, not cached)."""
        return RESULTS.get_or_compute(self.key, lambda: limited(get_local_model(self.model).run_ids,
                                                                list(self.ids)))


def run_text(model: str, text: str, pair: str | None = None) -> AttentionResult:
    """Cached text run (``ValueError`` for unusable text is raised, not cached)."""
    return TextRun(model, text, pair).result()
