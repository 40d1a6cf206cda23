"""Shared Streamlit pieces: cached model loading and runs, and widgets used by several pages.

Models are cached with ``st.cache_resource`` (one per process, shared read-only by every session);
results with a bounded ``st.cache_data``. Pages stay thin: they read widgets and call these.
"""
from __future__ import annotations

import hashlib
import logging
import threading

import numpy as np
import streamlit as st

from attnviz.analysis import fuse_heads, keep_tokens, threshold
from attnviz.models import AttentionModel, list_models, load_model, model_info
from attnviz.render import COLORSCALES, DEFAULT_COLORSCALE, grid_image, png_bytes
from attnviz.result import AttentionResult

log = logging.getLogger(__name__)

RESULT_CACHE_ENTRIES = 12
"""Results kept per process. One 512-token MiniLM result is 6*12*512*512*4 B = 75 MB of weights."""
RESULT_TTL_S = 1800

MAX_TEXT_CHARS_NOTICE = "Texts longer than the model's limit (512 tokens for MiniLM) are cut, and the page says so."


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


@st.cache_resource(show_spinner=False, max_entries=8)
def get_model(name: str) -> AttentionModel:
    """The loaded model ``name``, shared by all sessions of this process."""
    return load_model(name)


@st.cache_data(show_spinner=False, max_entries=RESULT_CACHE_ENTRIES, ttl=RESULT_TTL_S)
def run_text(model_name: str, text: str, text_pair: str | None) -> AttentionResult:
    """Cached text run (``ValueError`` for unusable text is raised, not cached)."""
    return get_model(model_name).run(text=text, text_pair=text_pair)


@st.cache_data(show_spinner=False, max_entries=RESULT_CACHE_ENTRIES * 4, ttl=RESULT_TTL_S)
def grid_png(model_name: str, text: str, text_pair: str | None, hide_special: bool, minimum: float,
             colorscale: str) -> bytes:
    """PNG of all heads (layers x heads) for a cached text run, with the view options applied."""
    result = run_text(model_name, text, text_pair)
    return png_bytes(grid_image(view_weights(result, hide_special, minimum), colorscale=colorscale))


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


def model_picker(kind: str, key: str, default: str | None = None) -> str:
    """Select box of the registered models of one kind."""
    names = list_models(kind)
    index = names.index(default) if default in names else 0
    return st.selectbox("Model", names, index=index, key=key,
                        format_func=lambda n: f"{n} — {model_info(n).description}")


def colorscale_picker(key: str) -> str:
    return st.selectbox("Colour scale", COLORSCALES, index=COLORSCALES.index(DEFAULT_COLORSCALE), key=key)


def show_value_error(e: ValueError) -> None:
    """Show a user-facing error from the library (never a traceback)."""
    st.error(str(e), icon="⚠️")
