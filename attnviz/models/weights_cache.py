"""A disk cache of converted model weights (safetensors), outside the repository.

Where: ``$ATTNVIZ_CACHE`` if set, else ``$XDG_CACHE_HOME/attnviz``, else ``~/.cache/attnviz``.
Each entry is ``{name}.safetensors`` plus ``{name}.json`` holding the file's sha256 and a fingerprint of what it was
converted from. A file whose hash or fingerprint does not match (truncated, corrupted, stale) is ignored with a
logged warning and rebuilt. Files are written to a temporary name and renamed, so a reader never sees half a file.
When the directory cannot be written, the caller keeps its weights in memory (a warning says so).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

log = logging.getLogger(__name__)

FORMAT = 1


def cache_dir() -> Path:
    """The cache directory (not created here)."""
    env = os.environ.get("ATTNVIZ_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "attnviz"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_cached(name: str, fingerprint: str) -> dict[str, torch.Tensor] | None:
    """The cached state dict ``name``, or ``None`` when absent, stale or damaged (logged)."""
    weights, meta = _paths(name)
    if not weights.is_file() or not meta.is_file():
        return None
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
        if info.get("format") != FORMAT or info.get("fingerprint") != fingerprint:
            log.warning("cached %s was converted from another source; converting again", weights)
            return None
        if file_sha256(weights) != info.get("sha256"):
            log.warning("cached %s is damaged or truncated (sha256 mismatch); converting again", weights)
            return None
        return load_file(str(weights))
    except (OSError, ValueError, json.JSONDecodeError, RuntimeError) as e:
        log.warning("cached %s could not be read (%s); converting again", weights, e)
        return None


def save_cached(name: str, state: dict[str, torch.Tensor], fingerprint: str) -> Path | None:
    """Write ``state`` to the cache; returns the path, or ``None`` (warning logged) if the cache is unwritable."""
    weights, meta = _paths(name)
    try:
        weights.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp_path(weights)
        try:
            save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
            digest = file_sha256(tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, weights)
        finally:
            tmp.unlink(missing_ok=True)
        tmp_meta = _temp_path(meta)
        tmp_meta.write_text(json.dumps({"format": FORMAT, "fingerprint": fingerprint, "sha256": digest}),
                            encoding="utf-8")
        os.chmod(tmp_meta, 0o644)
        os.replace(tmp_meta, meta)
    except OSError as e:
        log.warning("cannot write the weight cache in %s (%s); keeping %s in memory only. Set ATTNVIZ_CACHE to a "
                    "writable directory to skip the conversion next time.", weights.parent, e, name)
        return None
    log.info("cached %s at %s", name, weights)
    return weights


def _paths(name: str) -> tuple[Path, Path]:
    d = cache_dir()
    return d / f"{name}.safetensors", d / f"{name}.json"


def _temp_path(target: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    return Path(tmp)
