"""Model registry: names to loaders, and a process-wide cache of loaded models."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from attnviz.models.base import AttentionModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows of a model before loading it."""

    name: str
    kind: str  # "text", "image" or "seq2seq"
    description: str
    loader: Callable[[], AttentionModel]


_REGISTRY: dict[str, ModelEntry] = {}
_LOADED: dict[str, AttentionModel] = {}
_LOCKS: dict[str, threading.Lock] = {}
_GUARD = threading.Lock()


def register(name: str, kind: str, description: str) -> Callable[[Callable[[], AttentionModel]], Callable]:
    """Decorator: register ``loader`` under ``name`` (replacing an entry of that name and its loaded model)."""

    def deco(loader: Callable[[], AttentionModel]) -> Callable[[], AttentionModel]:
        with _GUARD:
            _REGISTRY[name] = ModelEntry(name, kind, description, loader)
            _LOADED.pop(name, None)
        return loader

    return deco


def list_models(kind: str | None = None) -> list[str]:
    """Names of the registered models, optionally only those of one kind."""
    _ensure_builtin()
    return [n for n, e in _REGISTRY.items() if kind is None or e.kind == kind]


def model_info(name: str) -> ModelEntry:
    """Registry entry of a model name; ``ValueError`` for an unknown name."""
    _ensure_builtin()
    if name not in _REGISTRY:
        raise ValueError(f"Unknown model {name!r}. Known models: {', '.join(_REGISTRY)}; "
                         "or pass the path of a local Hugging Face model directory.")
    return _REGISTRY[name]


def load_model(name: str | Path) -> AttentionModel:
    """Load a model by registered name, or from a local Hugging Face model directory.

    Loaded models are kept for the life of the process (loaded once, shared, read-only).
    Raises ``ValueError`` for an unknown name or a directory that is not a usable model.
    """
    _ensure_builtin()
    key = str(name)
    if key not in _REGISTRY:
        path = Path(key).expanduser()
        if not path.is_dir():
            model_info(key)  # raises the "unknown model" message
        key = str(path.resolve())
    with _GUARD:
        if key in _LOADED:
            return _LOADED[key]
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        if key not in _LOADED:
            if key in _REGISTRY:
                log.info("loading model %s", key)
                _LOADED[key] = _REGISTRY[key].loader()
            else:
                from attnviz.models.hf_text import load_hf_directory

                _LOADED[key] = load_hf_directory(Path(key))
    return _LOADED[key]


def _ensure_builtin() -> None:
    """Import the modules that register the built-in models."""
    from attnviz.models import builtin  # noqa: F401
