"""The local models folder: each sub-folder of ``$ATTNVIZ_MODELS_DIR`` (default ``./models``) is a Hugging Face
model directory, offered by its folder name beside the built-in models.

This is what a browser may open, so a name is only ever a folder name from :func:`scan`, and :func:`resolve`
refuses anything else: a path (``a/b``, ``/etc``), ``.``/``..``, hidden names, and any folder or file that resolves
(through symbolic links) outside the models folder. Files are checked again when the model loads. Nothing here
loads a model (:func:`load` hands a checked folder to :func:`attnviz.models.hf_dir.load_directory`).
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from attnviz.models.base import AttentionModel
from attnviz.models.hf_families import FAMILIES

log = logging.getLogger(__name__)

ENV = "ATTNVIZ_MODELS_DIR"
DEFAULT = "models"
MAX_FOLDERS = 200
"""Sub-folders looked at, at most (the listing is made on every page run)."""
MAX_FILES = 10_000
"""Files of one model folder whose links are checked, at most (more: refused)."""


@dataclass(frozen=True)
class LocalModel:
    """A sub-folder of the models folder, as listed (nothing loaded)."""

    name: str            # the folder's name: the model's name in pickers and results
    path: Path           # the folder, resolved
    kind: str            # "text", "seq2seq" or "image", from config.json's model_type
    description: str     # for pickers: family and folder


def models_dir() -> Path:
    """The models folder: ``$ATTNVIZ_MODELS_DIR``, else ``./models`` (of the current directory); may not exist."""
    return Path(os.environ.get(ENV) or DEFAULT).expanduser().absolute()


def scan(root: Path | None = None) -> list[LocalModel]:
    """The model folders under ``root`` (default :func:`models_dir`), sorted by name.

    A folder is listed when its name is safe (:func:`resolve`) and its ``config.json`` names a ``model_type`` of
    :mod:`attnviz.models.hf_families` (refused families too: loading one says why). Others are skipped with a
    logged warning; a missing models folder lists nothing.
    """
    root = models_dir() if root is None else Path(root)
    try:
        entries = sorted(p.name for p in root.iterdir())[:MAX_FOLDERS] if root.is_dir() else []
    except OSError as e:
        log.warning("models folder %s cannot be listed: %s", root, e)
        return []
    found = []
    for name in entries:
        try:
            path = resolve(name, root)
            model_type = json.loads((path / "config.json").read_text(encoding="utf-8")).get("model_type")
        except (ValueError, OSError, AttributeError) as e:
            _skipped(root, name, str(e))
            continue
        fam = FAMILIES.get(model_type) if isinstance(model_type, str) else None
        if fam is None:
            _skipped(root, name, f"model_type {model_type!r} is not one attnviz loads")
            continue
        found.append(LocalModel(name, path, fam.kind, f"{fam.label} from the local folder {name}"
                                + (" (cannot be shown: loading says why)" if fam.refused else "")))
    return found


_SKIPPED: set[tuple[str, str, str]] = set()


def _skipped(root: Path, name: str, why: str) -> None:
    """Log that folder ``name`` is not offered, once per folder and reason (the folder is listed on every page
    run)."""
    if (str(root), name, why) not in _SKIPPED:
        if len(_SKIPPED) < 10_000:
            _SKIPPED.add((str(root), name, why))
        log.warning("models folder %s: %s is skipped (%s)", root, name, why)


def resolve(name: str, root: Path | None = None) -> Path:
    """The folder of model ``name`` under ``root`` (default :func:`models_dir`), resolved.

    Raises:
        ValueError: ``name`` is not a plain folder name, does not exist, or it or a file in it resolves outside
            ``root`` (a symbolic link out of the models folder).
    """
    root = models_dir() if root is None else Path(root)
    if not isinstance(name, str) or not name or name.startswith(".") or "\x00" in name \
            or any(sep in name for sep in ("/", "\\", os.sep)) or Path(name).is_absolute():
        raise ValueError(f"{name!r} is not the name of a folder in the models folder.")
    try:
        base = root.resolve(strict=True)
        path = (root / name).resolve(strict=True)
    except (OSError, RuntimeError) as e:  # missing, or a loop of links
        raise ValueError(f"There is no model {name!r} in the models folder {root}.") from e
    if path.parent != base and base not in path.parents:
        raise ValueError(f"The model folder {name!r} leads outside the models folder {root}: refused.")
    if not path.is_dir():
        raise ValueError(f"{name!r} in the models folder {root} is not a folder.")
    _check_inside(path, base, name)
    return path


def _check_inside(path: Path, base: Path, name: str) -> None:
    """Refuse a model folder holding anything that resolves outside ``base`` (every file and folder in it)."""
    n, seen = 0, set()
    for folder, dirs, files in os.walk(path, followlinks=True):
        real = Path(folder).resolve()
        if real in seen:  # a link back to a folder already checked
            dirs.clear()
            continue
        seen.add(real)
        for entry in (*dirs, *files):
            n += 1
            if n > MAX_FILES:
                raise ValueError(f"The model folder {name!r} holds over {MAX_FILES:,} files: refused.")
            try:
                target = (Path(folder) / entry).resolve(strict=True)
            except (OSError, RuntimeError) as e:
                raise ValueError(f"The model folder {name!r} holds a broken link: {entry}.") from e
            if base not in target.parents:
                raise ValueError(f"The model folder {name!r} holds {entry}, which leads outside the models "
                                 "folder: refused.")


def load(name: str, root: Path | None = None) -> AttentionModel:
    """Load model ``name`` of the models folder (its name in results is the folder's).

    Raises:
        ValueError: an unsafe or unknown name (:func:`resolve`), or a directory that cannot be shown; the message
            names the folder, not its path on the server.
    """
    from attnviz.models.hf_dir import load_directory

    root = models_dir() if root is None else Path(root)
    path = None
    try:
        path = resolve(name, root)
        return load_directory(path, name=name)
    except ValueError as e:
        raise ValueError(_without_paths(str(e), name, root, path)) from e


def _without_paths(message: str, name: str, root: Path, path: Path | None) -> str:
    """``message`` with the server's paths of the models folder and of model ``name`` (at ``path``) replaced by
    words: the message is shown in the browser (the server log keeps the paths)."""
    roots = {str(root), str(root.absolute())}
    try:
        roots.add(str(root.resolve()))
    except (OSError, RuntimeError):
        pass
    folders = {f"{r}{os.sep}{name}" for r in roots} | ({str(path)} if path is not None else set())
    for f in sorted(folders, key=len, reverse=True):
        message = message.replace(f, f"the folder {name!r}")
    for r in sorted(roots, key=len, reverse=True):
        message = message.replace(f"models folder {r}", "models folder").replace(r, "the models folder")
    return message[:1].upper() + message[1:]
