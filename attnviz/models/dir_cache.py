"""The disk cache of converted models: one folder per model, checked on every load, rebuilt when missing, stale
or damaged, and skipped (model kept in memory, warning logged) when the disk cannot hold it.

Some weights ship in a form that is slow to read (a 4-bit GGUF file is dequantised tensor by tensor, ~15 s; the
DINOv2 backbone is pulled out of an ONNX graph). The converted files (safetensors, JSON) live under
:func:`cache_dir`::

    {cache dir}/{name}/manifest.json      {"source": fingerprint, "files": {file: {"size", "crc32"}}}
    {cache dir}/{name}/model.safetensors  ... and any other files the converter wrote

A folder is used only when its manifest names the same source fingerprint and every file has the recorded size
and CRC-32 (a full read: ~0.1 s for 500 MB). CRC-32 catches truncation and bit rot; the cache is the user's own
folder, not a trust boundary, and holds no pickle. A folder is written under a temporary name and renamed into
place, so a killed process never leaves a half-written cache that looks valid. A read-only cache directory is
still read; a cache that cannot be written (read-only, full, not a directory) only costs the conversion next time.
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

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
NO_CACHE = "no cache yet"
_CHUNK = 1 << 23

T = TypeVar("T")


def cache_dir() -> Path:
    """The cache directory (not created here): ``$ATTNVIZ_CACHE``, else ``$XDG_CACHE_HOME/attnviz``, else
    ``~/.cache/attnviz``."""
    env = os.environ.get("ATTNVIZ_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "attnviz"


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
        (read-only, full, not a directory), the built object is returned and a warning logged; a valid cache in a
        read-only directory is still loaded.
    """
    root = cache_dir()
    target = root / name
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock_file = open(root / f".{name}.lock", "a")  # closed by the with below
    except OSError as e:  # read-only, or not a directory: a valid cache is still used, else convert in memory
        obj, why = _load_valid(target, source, load)
        if why is None:
            return obj
        log.warning("model cache %s is not writable (%s); converting %s and keeping it in memory only. Set "
                    "ATTNVIZ_CACHE to a writable directory to skip the conversion next time.", root, e, name)
        return build()
    with lock_file, _exclusive(lock_file):
        obj, why = _load_valid(target, source, load)
        if why is None:
            return obj
        level = logging.INFO if why == NO_CACHE else logging.WARNING  # a bad cache is worth a warning
        log.log(level, "building the cache of %s in %s: %s", name, target, why)
        obj = build()
        tmp = root / f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            tmp.mkdir()
            save(obj, tmp)
            files = {p.name: file_checksum(p) for p in sorted(tmp.iterdir()) if p.is_file()}
            for file in files:  # safetensors writes 0600; a server's cache may be filled by another user
                (tmp / file).chmod(0o644)
            (tmp / MANIFEST).write_text(json.dumps({"source": source, "files": files}, indent=1), encoding="utf-8")
            _replace_dir(tmp, target)
        except OSError as e:  # disk full, permissions...: the model is loaded, only the cache is lost
            log.warning("could not store the cache of %s in %s (%s); keeping it in memory only", name, target, e)
            shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return obj


def _load_valid(target: Path, source: dict[str, Any], load: Callable[[Path], T]) -> tuple[T | None, str | None]:
    """``(loaded object, None)`` if ``target`` is a valid cache of ``source`` that loads, else ``(None, why not)``."""
    why = problem(target, source)
    if why is None:
        try:
            return load(target), None
        except Exception as e:  # checksums fine but unloadable (e.g. a SafetensorError): rebuild
            why = f"could not be loaded ({e})"
    return None, why


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
