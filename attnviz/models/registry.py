"""Model registry: names to loaders, and a process-wide cache of loaded models.

Beside the built-in models, each sub-folder of the local models folder (:mod:`attnviz.models.local`) is an entry
named by its folder, kept in step with the folder whenever models are listed or looked up.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
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
    folder: Path | None = None  # a model of the local models folder: its folder


_REGISTRY: dict[str, ModelEntry] = {}
_LOADED: dict[str, AttentionModel] = {}
_LOCKS: dict[str, threading.Lock] = {}
_GUARD = threading.Lock()
_CLASHES: set[str] = set()


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
    _sync_local()
    with _GUARD:
        return [n for n, e in _REGISTRY.items() if kind is None or e.kind == kind]


def model_info(name: str) -> ModelEntry:
    """Registry entry of a model name; ``ValueError`` for an unknown name. (The local models folder is looked at
    again only for a name not known yet: :func:`list_models` keeps it in step.)"""
    _ensure_builtin()
    if name not in _REGISTRY:
        _sync_local()
    if name not in _REGISTRY:
        raise ValueError(f"Unknown model {name!r}. Known models: {', '.join(_REGISTRY)}; "
                         "or pass the path of a local Hugging Face model directory.")
    return _REGISTRY[name]


def load_model(name: str | Path, *, allow_paths: bool = True) -> AttentionModel:
    """Load a model by registered name (a folder of the local models folder too), or from a local Hugging Face
    model directory (text, encoder-decoder or vision: :func:`attnviz.models.hf_dir.load_directory`).

    Loaded models are kept for the life of the process (loaded once, shared, read-only). ``allow_paths=False``
    takes registered names only (what a web page passes: a browser must not open arbitrary directories).
    Raises ``ValueError`` for an unknown name or a directory that is not a usable model.
    """
    _ensure_builtin()
    key = str(name)
    if key not in _REGISTRY:
        _sync_local()
    if key not in _REGISTRY:
        path = Path(key).expanduser()
        if not allow_paths or not path.is_dir():
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
                from attnviz.models.hf_dir import load_directory

                _LOADED[key] = load_directory(Path(key))
    return _LOADED[key]


def is_loaded(name: str) -> bool:
    """Whether the registered model ``name`` is loaded in this process (:func:`load_model` returns it at once)."""
    with _GUARD:
        return name in _LOADED


def _sync_local() -> None:
    """Make the registry's local entries those of the models folder now: new folders added, gone or changed ones
    dropped (with their loaded model). A folder named like a built-in model is left out (logged once)."""
    from attnviz.models import local

    root = local.models_dir()
    found = {m.name: m for m in local.scan(root)}
    with _GUARD:
        for name, entry in list(_REGISTRY.items()):
            now = found.get(name)
            if entry.folder is not None and (now is None or (now.path, now.kind) != (entry.folder, entry.kind)):
                _REGISTRY.pop(name)
                _LOADED.pop(name, None)
        for name, m in found.items():
            if name not in _REGISTRY:
                _REGISTRY[name] = ModelEntry(name, m.kind, m.description, partial(local.load, name, root), m.path)
            elif _REGISTRY[name].folder is None and name not in _CLASHES:
                _CLASHES.add(name)
                log.warning("the local model folder %s is not offered: %r is a built-in model; rename the folder",
                            m.path, name)


def _ensure_builtin() -> None:
    """Import the modules that register the built-in models."""
    from attnviz.models import builtin  # noqa: F401
