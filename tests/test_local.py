"""The local models folder ($ATTNVIZ_MODELS_DIR): sub-folders become models named by folder, listed by kind beside
the built-in ones; nothing outside the folder can be reached by a name."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import attnviz
from attnviz.models import local, model_info, registry


@pytest.fixture()
def models(tmp_path, monkeypatch, text_dir, vision_dir) -> Path:
    """A models folder with a text, an encoder-decoder and an image model, set as $ATTNVIZ_MODELS_DIR."""
    root = tmp_path / "models"
    root.mkdir()
    for name, source in (("my-bert", text_dir("bert")), ("my-t5", text_dir("t5")), ("my-vit", vision_dir("vit"))):
        shutil.copytree(source, root / name)
    monkeypatch.setenv(local.ENV, str(root))
    yield root
    monkeypatch.delenv(local.ENV)
    registry._sync_local()  # forget this folder's models


def test_default_folder_is_models_in_the_current_directory(monkeypatch, tmp_path):
    monkeypatch.delenv(local.ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert local.models_dir() == tmp_path / "models"
    assert local.scan() == []  # no such folder: nothing, no error


def test_sub_folders_are_listed_by_kind_and_named_by_folder(models):
    found = {m.name: m.kind for m in local.scan()}
    assert found == {"my-bert": "text", "my-t5": "seq2seq", "my-vit": "image"}
    assert "my-bert" in attnviz.list_models("text") and "my-bert" not in attnviz.list_models("image")
    assert "my-vit" in attnviz.list_models("image") and "my-t5" in attnviz.list_models("seq2seq")
    assert "minilm" in attnviz.list_models("text")  # the built-in models stay
    assert model_info("my-bert").description == "BERT from the local folder my-bert"


def test_a_listed_model_loads_by_its_name(models):
    m = attnviz.load_model("my-bert", allow_paths=False)
    r = m.run(text="A local model.")
    assert r.model == m.name == "my-bert" and r.n_tokens > 2
    assert attnviz.load_model("my-vit", allow_paths=False).kind == "image"


def test_folders_that_are_not_models_are_left_out(models, caplog):
    (models / ".hidden").mkdir()
    (models / "notes.txt").write_text("not a model")
    (models / "empty").mkdir()
    (models / "odd").mkdir()
    (models / "odd" / "config.json").write_text('{"model_type": "not-a-model"}')
    assert {m.name for m in local.scan()} == {"my-bert", "my-t5", "my-vit"}
    assert "odd is skipped" in caplog.text and "empty is skipped" in caplog.text


def test_a_refused_family_is_listed_and_says_why_when_loaded(models, text_dir):
    swin = models / "my-swin"
    shutil.copytree(text_dir("bert"), swin)
    (swin / "config.json").write_text('{"model_type": "swin"}')
    assert "my-swin" in attnviz.list_models("image")
    with pytest.raises(ValueError, match="windows"):
        attnviz.load_model("my-swin", allow_paths=False)


def test_removed_and_added_folders_follow_the_listing(models):
    attnviz.load_model("my-bert")
    shutil.rmtree(models / "my-bert")
    assert "my-bert" not in attnviz.list_models() and "my-bert" not in registry._LOADED
    shutil.copytree(models / "my-t5", models / "another")
    assert "another" in attnviz.list_models("seq2seq")


def test_a_folder_named_like_a_built_in_model_is_not_offered(models, text_dir, caplog):
    shutil.copytree(text_dir("bert"), models / "minilm")
    assert attnviz.list_models().count("minilm") == 1
    assert model_info("minilm").folder is None and "is a built-in model" in caplog.text


@pytest.mark.parametrize("name", ["..", ".", "", "../models", "my-bert/../..", "/etc", "/", "a/b", "a\\b",
                                  ".hidden", "nul\x00", "no-such-model"])
def test_names_that_are_not_a_folder_of_the_models_folder_are_refused(models, name):
    with pytest.raises(ValueError):
        local.resolve(name)
    with pytest.raises(ValueError):
        attnviz.load_model(name, allow_paths=False)


def test_a_link_out_of_the_models_folder_is_refused(models, tmp_path, text_dir):
    outside = tmp_path / "outside"
    shutil.copytree(text_dir("bert"), outside)
    (models / "linked-out").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError, match="leads outside the models folder"):
        local.resolve("linked-out")
    assert "linked-out" not in attnviz.list_models()


def test_a_file_linked_out_of_a_model_folder_is_refused(models, tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text('{"model_type": "bert"}')
    (models / "my-bert" / "config.json").unlink()
    (models / "my-bert" / "config.json").symlink_to(secret)
    with pytest.raises(ValueError, match="config.json, which leads outside"):
        local.resolve("my-bert")
    with pytest.raises(ValueError):
        attnviz.load_model("my-bert", allow_paths=False)


def test_links_inside_the_models_folder_are_followed(models):
    (models / "alias").symlink_to(models / "my-bert", target_is_directory=True)
    (models / "loop").mkdir()
    (models / "loop" / "self").symlink_to(models / "loop", target_is_directory=True)
    assert local.resolve("alias") == (models / "my-bert").resolve()
    assert "alias" in attnviz.list_models("text")
    assert local.resolve("loop") == models / "loop"  # checking a folder that links to itself ends
    assert not any(m.name == "loop" for m in local.scan())  # no config.json: not a model


def test_paths_are_refused_when_only_names_are_allowed(models, text_dir):
    path = text_dir("bert")
    with pytest.raises(ValueError, match="Unknown model"):
        attnviz.load_model(str(path), allow_paths=False)
    with pytest.raises(ValueError, match="Unknown model"):
        attnviz.load_model(str(models / "my-bert"), allow_paths=False)
    assert attnviz.load_model(str(path)).kind == "text"  # the Python API takes paths


def test_an_unreadable_models_folder_lists_nothing(models, monkeypatch, caplog):
    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "iterdir", denied)
    assert local.scan() == [] and "cannot be listed" in caplog.text
