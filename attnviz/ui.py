"""Shared Streamlit pieces: cached model loading and runs, and widgets used by several pages.

Models are cached with ``st.cache_resource`` (one per process, shared read-only by every session);
results in a process-wide cache bounded by bytes (:mod:`attnviz.cache`); derived
images and numbers with a bounded ``st.cache_data``. Pages stay thin: they read widgets and call these.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import streamlit as st

from attnviz import allocator, gil
from attnviz.analysis import HeadStats, fuse_heads, head_stats, keep_tokens, rollout, threshold
from attnviz.analysis.flow import Progress, flow_rows
from attnviz.cache import BoundedCache
from attnviz.models import AttentionModel, list_models, load_model, model_info
from attnviz.render import COLORSCALES, DEFAULT_COLORSCALE, grid_image, png_bytes
from attnviz.render.raster import fit_cell
from attnviz.result import AttentionResult

log = logging.getLogger(__name__)
T = TypeVar("T")
# This module is loaded by every page, so these apply to the server process: big buffers go back to the OS, and
# sessions' threads wait less for the GIL.
allocator.limit_heap_growth()
gil.share_gil_sooner()

RESULT_CACHE_BYTES = int(os.environ.get("ATTNVIZ_RESULT_CACHE_MB", "768")) * 2**20
"""Attention results kept per process, shared by all sessions (environment ``ATTNVIZ_RESULT_CACHE_MB``, default
768). A 512-token result holds layer*head*512*512*4 B of weights: 75 MB for MiniLM, 283 MB for SmolLM2-135M. Eight
people each with a 512-token text and a DINOv2 picture hold 8 * (75 + 19) MB: at 512 MB they evicted each other's
results, so going back to the Text page re-ran the model (server time per Text page run under load, p50: 3.1 s at
512 MB, 0.36 s at 800 MB; peak RSS 1.60 and 1.80 GiB)."""
RESULT_CACHE_ENTRIES = 12
"""Entry bound of the small derived caches (rollout, statistics, rendered PNGs)."""
RESULT_TTL_S = 1800

TEXT_LIMIT_NOTICE = ("Limits: a text longer than the model's limit (512 tokens for MiniLM and SmolLM2, about "
                     "2,000 characters of English) is cut to it, and the page says so.")


def warm_up(*names: str) -> None:
    """Load models in a background thread (once per process) so the first Run does not wait for them."""

    def load() -> None:
        for name in names:
            try:
                load_model(name)
            except Exception:  # the page that needs it will show the error
                log.exception("warm-up of %s failed", name)

    with _WARM_LOCK:
        todo = [n for n in names if n not in _WARMED]
        _WARMED.update(todo)
    if todo:
        threading.Thread(target=load, name="attnviz-warm-up", daemon=True).start()


_WARMED: set[str] = set()
_WARM_LOCK = threading.Lock()


class ModelLoadError(ValueError):
    """A model could not be loaded. A ``ValueError``, so every page shows it like bad input, never as a traceback."""


class ModelRunError(ValueError):
    """A loaded model failed on an input (out of memory, a bug...). Shown like bad input, never as a traceback."""


def _cause(e: BaseException) -> str:
    """The exception's message for people: its text (or type), at most 300 characters, no final full stop."""
    detail = (str(e) or type(e).__name__).rstrip(".")
    return detail[:300] + "…" if len(detail) > 300 else detail


def get_model(name: str) -> AttentionModel:
    """The loaded model ``name``, shared by all sessions of this process.

    Raises:
        ModelLoadError: whatever loading raised (missing package, broken file...), with the cause in the message.
            It is logged with its traceback and not cached: the next call tries again.
    """
    try:
        return _shared_model(name)
    except Exception as e:
        log.error("loading model %s failed", name, exc_info=True)
        raise ModelLoadError(f"The model {name!r} could not be loaded: {_cause(e)}. The other models still work; "
                             "the server log has the details.") from e


@st.cache_resource(show_spinner=False, max_entries=8)
def _shared_model(name: str) -> AttentionModel:
    return load_model(name)


def load_with_progress(name: str) -> AttentionModel:
    """:func:`get_model` under a spinner with a running clock: a model's first load in a process can take ~20 s
    (SmolLM2 converts its GGUF file once); once loaded it returns at once and nothing is shown."""
    with st.spinner(f"Loading {name}: once per server process; a first load can take ~20 s…", show_time=True):
        return get_model(name)


def result_bytes(result: AttentionResult) -> int:
    """Memory held by a result's weights (its own and its parts')."""
    return result.weights.nbytes + sum(result_bytes(p) for p in result.parts.values())


RESULTS: BoundedCache[AttentionResult] = BoundedCache(RESULT_CACHE_BYTES, RESULT_TTL_S, result_bytes)
"""Results of every page, keyed by (kind, model name, input digest); read-only, never copied."""


MODEL_RUN_SLOTS = 2
"""Model runs at once in this process; more sessions wait their turn. A 512-token MiniLM run briefly needs
~180 MB beyond its result, so eight interleaved runs would need ~1.4 GB, and on 2 cores they finish no sooner."""
_RUN_SLOTS = threading.BoundedSemaphore(MODEL_RUN_SLOTS)


def limited(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """``fn(*args, **kwargs)`` (a model run) in one of the :data:`MODEL_RUN_SLOTS` (blocks until one is free); the
    last run of a burst gives the free heap back to the OS.

    Raises:
        ValueError: as ``fn`` raised it (unusable input).
        ModelRunError: for anything else ``fn`` raised, logged with its traceback.
    """
    try:
        with allocator.burst(), _RUN_SLOTS:
            return fn(*args, **kwargs)
    except ValueError:
        raise
    except Exception as e:
        log.error("model run failed", exc_info=True)
        raise ModelRunError(f"The model failed on this input: {_cause(e)}. Other inputs and models still "
                            "work; the server log has the details.") from e


def run_text(model_name: str, text: str, text_pair: str | None) -> AttentionResult:
    """Cached text run (``ValueError`` for unusable text is raised, not cached)."""
    key = ("text", model_name, digest(text, text_pair))
    return RESULTS.get_or_compute(key, lambda: limited(get_model(model_name).run, text=text, text_pair=text_pair))


def digest(*parts: str | None) -> str:
    """Full SHA-256 of the inputs (a cache key that cannot collide in practice)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(b"\x00" if p is None else b"\x01" + p.encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()


@st.cache_data(show_spinner=False, max_entries=RESULT_CACHE_ENTRIES * 4, ttl=RESULT_TTL_S)
def grid_png(model_name: str, text: str, text_pair: str | None, hide_special: bool, minimum: float,
             colorscale: str) -> bytes:
    """PNG of all heads (layers x heads) for a cached text run, with the view options applied."""
    result = run_text(model_name, text, text_pair)
    image = grid_image(view_weights(result, hide_special, minimum), cell=fit_cell(result.n_layers),
                       colorscale=colorscale)
    return png_bytes(image, compress_level=1)


def view_weights(result: AttentionResult, hide_special: bool, minimum: float) -> np.ndarray:
    """``[layer, head, query, key]`` with the page's view options: special tokens hidden (rows
    renormalised) and weights below ``minimum`` set to 0."""
    w = result.weights
    if hide_special and result.key_tokens is None:
        w = keep_tokens(w, ~result.special)
    return threshold(w, minimum)


def view_tokens(result: AttentionResult, hide_special: bool) -> list[str]:
    """Token labels matching :func:`view_weights`."""
    if hide_special and result.key_tokens is None:
        return [t for t, s in zip(result.tokens, result.special, strict=True) if not s]
    return list(result.tokens)


def layer_matrix(weights: np.ndarray, layer: int, how: str) -> np.ndarray:
    """Heads of one layer fused by ``how`` (mean/max): ``[query, key]``."""
    return fuse_heads(weights[layer], how)


def input_key(*parts: str | None) -> str:
    """A short stable key naming an input (for file names and cache keys)."""
    h = hashlib.sha1("\x1f".join(p or "" for p in parts).encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:10]


def model_picker(kind: str, key: str, default: str | None = None, bind: bool = False) -> str:
    """Select box of the registered models of one kind.

    ``bind=True`` keeps the choice in the URL (query parameter ``key``, the model's name), so a link reopens it.
    """
    names = list_models(kind)
    index = names.index(default) if default in names else 0
    if bind:  # the URL holds the formatted option, so keep it short: the name; descriptions go to the tooltip
        return st.selectbox("Model", names, index=index, key=key, bind="query-params",
                            help="\n".join(f"- **{n}**: {model_info(n).description}" for n in names))
    return st.selectbox("Model", names, index=index, key=key,
                        format_func=lambda n: f"{n} — {model_info(n).description}")


def colorscale_picker(key: str) -> str:
    return st.selectbox("Colour scale", COLORSCALES, index=COLORSCALES.index(DEFAULT_COLORSCALE), key=key)


def show_value_error(e: ValueError) -> None:
    """Show a user-facing error from the library (never a traceback), as plain text: messages may quote what the
    person typed (a table cell, a file's content), which must not become Markdown."""
    st.error(md_literal(str(e)), icon="⚠️")


_MD_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")


def md_literal(text: str) -> str:
    """``text`` for a Markdown element (``st.caption``, ``st.error``...), shown exactly as it is: every ASCII
    punctuation mark is backslash-escaped (CommonMark allows it for all of them), so ``**``, ``[link](…)``,
    ``:red[…]``, ``$…$`` and ``<tags>`` show as typed."""
    return _MD_SPECIAL.sub(r"\\\1", text)


# ------------------------------------------------------------------------------------------- shareable URLs

URL_TEXT_LIMIT = 1500
"""Longest text (characters) written into the URL; longer inputs are not part of a shared link."""
URL_NOTICE = (f"The address bar keeps the model, the text (up to {URL_TEXT_LIMIT:,} characters), layer, head and "
              "view: copy it to share this view.")
BIND = "query-params"
"""Pass as ``bind=`` to a keyed widget (or ``st.tabs``) to keep its value in the URL under its key."""


def seed_from_url(key: str, param: str, default: str) -> None:
    """Before a keyed widget is made: start it from URL parameter ``param`` (first run of a session), else from
    ``default``. Create the widget *without* ``value=`` afterwards (its value comes from session state).
    For values too long for :data:`BIND` (free text); short choices should use ``bind=BIND`` instead."""
    if key not in st.session_state:
        st.session_state[key] = st.query_params.get(param, default)


def set_url_param(param: str, value: str | None, default: str | None = None, limit: int = URL_TEXT_LIMIT) -> None:
    """Write ``value`` to URL parameter ``param`` so a copied link reopens it; remove the parameter when the
    value is empty, equals ``default`` or is longer than ``limit`` characters (URLs are not for megabytes)."""
    keep = bool(value) and value != default and len(value) <= limit
    if keep and st.query_params.get(param) != value:
        st.query_params[param] = value
    elif not keep and param in st.query_params:
        del st.query_params[param]


# ------------------------------------------------------------------------------- across layers, head statistics

@st.cache_data(show_spinner=False, max_entries=RESULT_CACHE_ENTRIES, ttl=RESULT_TTL_S)
def text_rollout(model_name: str, text: str, text_pair: str | None) -> np.ndarray:
    """Rollout ``[query, key]`` of a cached text run (all tokens, heads averaged)."""
    return rollout(run_text(model_name, text, text_pair).weights)


_FLOW_CACHE: OrderedDict[tuple, np.ndarray] = OrderedDict()
_FLOW_LOCK = threading.Lock()
FLOW_CACHE_ENTRIES = 8


def text_flow(model_name: str, text: str, text_pair: str | None, progress: Progress | None = None) -> np.ndarray:
    """Full attention flow ``[query, key]`` of a text run, reporting ``progress(done, total)`` per output token.

    Kept in a small process-wide LRU (not ``st.cache_data``, which would replay the progress bar)."""
    key = (model_name, text, text_pair)
    with _FLOW_LOCK:
        if key in _FLOW_CACHE:
            _FLOW_CACHE.move_to_end(key)
            return _FLOW_CACHE[key]
    flow = flow_rows(run_text(model_name, text, text_pair).weights, progress=progress)
    with _FLOW_LOCK:
        _FLOW_CACHE[key] = flow
        while len(_FLOW_CACHE) > FLOW_CACHE_ENTRIES:
            _FLOW_CACHE.popitem(last=False)
    return flow


def cached_text_flow(model_name: str, text: str, text_pair: str | None) -> np.ndarray | None:
    """The full flow matrix if :func:`text_flow` already computed it, else None."""
    with _FLOW_LOCK:
        return _FLOW_CACHE.get((model_name, text, text_pair))


@st.cache_data(show_spinner=False, max_entries=RESULT_CACHE_ENTRIES, ttl=RESULT_TTL_S)
def text_head_stats(model_name: str, text: str, text_pair: str | None) -> HeadStats:
    """Statistics of every head of a cached text run (all tokens, special ones included)."""
    r = run_text(model_name, text, text_pair)
    return head_stats(r.weights, r.tokens, r.special)
