"""A disk cache of converted model *folders* (weights, config, tokenizer), checked on every load and rebuilt
when missing, stale or damaged.

Some weights ship in a form that is slow to read (a 4-bit GGUF file is dequantised tensor by tensor, ~15 s).
The converted files (safetensors, JSON) are kept in the cache directory of
:func:`attnviz.models.weights_cache.cache_dir` (``$ATTNVIZ_CACHE``, default ``~/.cache/attnviz``), one folder
per model, next to the single-file state dicts that module caches::

    {cache dir}/{name}/manifest.json      {"source": fingerprint, "files": {file: {"size", "crc32"}}}
    {cache dir}/{name}/model.safetensors  ... and any other files the converter wrote

A folder is used only when its manifest names the same source fingerprint and every file has the recorded size
and CRC-32 (a full read: ~0.1 s for 500 MB). CRC-32 catches truncation and bit rot; the cache is the user's own
folder, not a trust boundary, and holds no pickle. A folder is written under a temporary name and renamed into
place, so a killed process never leaves a half-written cache that looks valid.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from attnviz.models.weights_cache import cache_dir

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
NO_CACHE = "no cache yet"
_CHUNK = 1 << 23

T = TypeVar("T")


def file_checksum(path: Path) -> dict[str, Any]:
    """``{"size": bytes, "crc32": hex}`` of a file, read in chunks."""
    crc, size = 0, 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
    return {"size": size, "crc32": f"{crc:08x}"}


def problem(directory: Path, source: dict[str, Any]) -> str | None:
    """Why ``directory`` is not a usable cache for ``source`` (a JSON-able fingerprint), or None if it is."""
    manifest = directory / MANIFEST
    if not manifest.is_file():
        return NO_CACHE
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        if doc.get("source") != source:
            return "made from another source or converter version"
        files = doc["files"]
        if not files:
            return "empty manifest"
        for name, expected in files.items():
            path = directory / name
            if not path.is_file():
                return f"{name} is missing"
            if path.stat().st_size != expected["size"] or file_checksum(path) != expected:
                return f"{name} is damaged (size or CRC-32 differs from the manifest)"
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        return f"unreadable manifest ({e})"
    return None


def load_cached(name: str, source: dict[str, Any], build: Callable[[], T], save: Callable[[T, Path], None],
                load: Callable[[Path], T]) -> T:
    """Load ``name`` from its cache folder; or build it from the source and store the cache for next time.

    Args:
        name: folder name under the cache directory.
        source: JSON-able fingerprint of what the cache is made from (source checksum, converter versions...).
        build: converts from the source (slow) and returns the loaded object.
        save: writes an object returned by ``build`` as files into the given empty folder.
        load: reads a valid cache folder and returns the loaded object (fast).
    Returns:
        What ``load`` returned (warm) or what ``build`` returned (cold). When the cache cannot be written
        (read-only home, disk full), the built object is returned and a warning logged.
    """
    root = cache_dir()
    target = root / name
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock_file = open(root / f".{name}.lock", "a")  # closed by the with below
    except OSError as e:
        log.warning("model cache %s is not writable (%s); converting %s without caching", root, e, name)
        return build()
    with lock_file, _exclusive(lock_file):
        why = problem(target, source)
        if why is None:
            try:
                return load(target)
            except (OSError, ValueError, RuntimeError) as e:  # checksums fine but unloadable: rebuild
                why = f"could not be loaded ({e})"
        level = logging.INFO if why == NO_CACHE else logging.WARNING  # a bad cache is worth a warning
        log.log(level, "building the cache of %s in %s: %s", name, target, why)
        obj = build()
        tmp = root / f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            tmp.mkdir()
            save(obj, tmp)
            files = {p.name: file_checksum(p) for p in sorted(tmp.iterdir()) if p.is_file()}
            (tmp / MANIFEST).write_text(json.dumps({"source": source, "files": files}, indent=1), encoding="utf-8")
            _replace_dir(tmp, target)
        except OSError as e:  # disk full, permissions...: the model is loaded, only the cache is lost
            log.warning("could not store the cache of %s in %s: %s", name, target, e)
            shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return obj


def _replace_dir(new: Path, target: Path) -> None:
    """Put folder ``new`` at ``target``, removing what was there."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        target.rename(old)
    new.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _exclusive(lock_file: IO) -> Iterator[None]:
    """Hold an exclusive lock between processes (``fcntl.flock``; a no-op where fcntl does not exist)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: two processes may both convert; the rename keeps the folder whole
        yield
        return
    fcntl.flock(lock_file, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(lock_file, fcntl.LOCK_UN)
