"""attnviz.models.dir_cache, exercised with DINOv2's converted safetensors: a damaged cache is rebuilt, an
unwritable, full or read-only cache directory keeps the model in memory (real model, real files)."""
from __future__ import annotations

import builtins
import errno
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import attnviz
from attnviz.models import dinov2 as dinov2_module
from attnviz.models import dir_cache
from tests.damage import truncate

ROOT = Path(__file__).resolve().parents[1]

CACHED = "dinov2-small/model.safetensors"


@pytest.fixture(scope="module")
def cat() -> object:
    return attnviz.load_image(ROOT / "assets" / "examples" / "cat.jpg")


@pytest.fixture(scope="module")
def dinov2_weights(cat) -> np.ndarray:
    """``[layer, head, query, key]`` of the shared DINOv2 on the cat: what every fallback must reproduce."""
    return attnviz.load_model("dinov2-small").run(image=cat).weights


def count_conversions(monkeypatch) -> list[Path]:
    """Record every ONNX conversion (the real one still runs)."""
    calls: list[Path] = []
    real = dinov2_module.convert_onnx
    monkeypatch.setattr(dinov2_module, "convert_onnx", lambda path: calls.append(path) or real(path))
    return calls


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_dinov2_cache_is_rebuilt_not_loaded(monkeypatch, tmp_path, caplog, damage):
    monkeypatch.setenv("ATTNVIZ_CACHE", str(tmp_path))
    first = dinov2_module.load_state()
    cached = tmp_path / CACHED
    size = cached.stat().st_size
    assert cached.stat().st_mode & 0o777 == 0o644  # readable by the other users of a shared cache
    if damage == "truncate":
        truncate(cached)
    else:  # one bit inside the tensor data: same size, and safetensors alone would load it without complaint
        data = bytearray(cached.read_bytes())
        data[-1000] ^= 0x10
        cached.write_bytes(bytes(data))
    calls = count_conversions(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="attnviz.models.dir_cache"):
        rebuilt = dinov2_module.load_state()
    assert len(calls) == 1  # converted again from the ONNX file
    assert "damaged" in caplog.text
    assert rebuilt.keys() == first.keys() and all(torch.equal(first[k], rebuilt[k]) for k in first)
    assert cached.stat().st_size == size and dir_cache.problem(cached.parent, _source()) is None
    dinov2_module.load_state()
    assert len(calls) == 1  # the rebuilt cache is used


@pytest.mark.parametrize("where", ["under a file", "in sysfs"])
def test_unwritable_cache_dir_keeps_the_model_in_memory(monkeypatch, tmp_path, caplog, cat, dinov2_weights, where):
    if where == "under a file":  # mkdir fails with NotADirectoryError, also for root
        (tmp_path / "a-file").write_text("not a directory")
        cache = tmp_path / "a-file" / "cache"
    else:  # mkdir fails with EPERM, also for root
        cache = Path("/sys/attnviz-cache")
        if not Path("/sys/kernel").is_dir():
            pytest.skip("no sysfs here")
    monkeypatch.setenv("ATTNVIZ_CACHE", str(cache))
    with caplog.at_level(logging.WARNING, logger="attnviz.models.dir_cache"):
        model = dinov2_module.load()
    assert "not writable" in caplog.text and "in memory only" in caplog.text
    np.testing.assert_allclose(model.run(image=cat).weights, dinov2_weights, atol=1e-6)
    assert not cache.exists()


def test_full_disk_keeps_the_model_in_memory(monkeypatch, tmp_path, caplog, cat, dinov2_weights):
    monkeypatch.setenv("ATTNVIZ_CACHE", str(tmp_path))

    def disk_full(state: dict, path: str, **kw) -> None:  # half the file reaches the disk, then ENOSPC
        save_file(state, path, **kw)
        truncate(Path(path))
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(dinov2_module, "save_file", disk_full)
    with caplog.at_level(logging.WARNING, logger="attnviz.models.dir_cache"):
        model = dinov2_module.load()
    assert "No space left on device" in caplog.text and "in memory only" in caplog.text
    np.testing.assert_allclose(model.run(image=cat).weights, dinov2_weights, atol=1e-6)
    assert not (tmp_path / "dinov2-small").exists() and not list(tmp_path.glob(".dinov2-small.tmp-*"))
    monkeypatch.undo()  # space again: the next load writes a whole cache
    monkeypatch.setenv("ATTNVIZ_CACHE", str(tmp_path))
    dinov2_module.load_state()
    assert dir_cache.problem(tmp_path / "dinov2-small", _source()) is None


def test_read_only_cache_dir_still_serves_its_valid_copy(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("ATTNVIZ_CACHE", str(tmp_path))
    first = dinov2_module.load_state()
    (tmp_path / ".dinov2-small.lock").unlink()

    def read_only_open(file, mode: str = "r", *args, **kwargs):  # a read-only mount, which root cannot write either
        if set(mode) & set("wax+"):
            raise OSError(errno.EROFS, "Read-only file system", str(file))
        return builtins.open(file, mode, *args, **kwargs)

    monkeypatch.setattr(dir_cache, "open", read_only_open, raising=False)
    calls = count_conversions(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="attnviz.models.dir_cache"):
        again = dinov2_module.load_state()
    assert calls == [] and not [r for r in caplog.records if r.name.startswith("attnviz")]  # used as it is
    assert all(torch.equal(first[k], again[k]) for k in first)
    truncate(tmp_path / CACHED)  # and a damaged copy in a read-only directory is converted in memory
    with caplog.at_level(logging.WARNING, logger="attnviz.models.dir_cache"):
        rebuilt = dinov2_module.load_state()
    assert len(calls) == 1 and "in memory only" in caplog.text
    assert all(torch.equal(first[k], rebuilt[k]) for k in first)


def _source() -> dict:
    path = dinov2_module.onnx_path()
    return {"file": path.name, **dir_cache.file_checksum(path), "converter": dinov2_module.CONVERTER_VERSION}
