"""A local directory that cannot be shown is one ValueError naming the problem and what to do; nothing of it stays
loaded, and a repaired directory loads without a restart."""
from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

import attnviz
from attnviz.models import registry
from attnviz.models.hf_dir import load_directory
from tests.hf_dirs import TEXT, build_text


def copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def edit_json(file: Path, **changes) -> None:
    file.write_text(json.dumps({**json.loads(file.read_text()), **changes}))


def refused(path: Path, *words: str) -> str:
    """The message of loading ``path`` through the public API; checks that nothing was kept."""
    with pytest.raises(ValueError) as info:
        attnviz.load_model(path)
    message = str(info.value)
    for word in words:
        assert word in message, message
    assert str(path.resolve()) not in registry._LOADED
    return message


class Unpickled:
    """A pickle that leaves a file behind when it is read: proof that a checkpoint was (not) unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_only_checkpoint_is_refused_and_never_read(text_dir, tmp_path):
    d = copy(text_dir("bert"), tmp_path / "bert")
    (d / "model.safetensors").unlink()
    marker = tmp_path / "unpickled"
    (d / "pytorch_model.bin").write_bytes(pickle.dumps(Unpickled(marker)))
    refused(d, "pytorch_model.bin", "pickle", "safetensors")
    assert not marker.exists()
    (d / "pytorch_model.bin").rename(d / "model.ckpt")
    refused(d, "model.ckpt", "never reads pickles")
    assert not marker.exists()


def test_safetensors_beside_a_pickle_are_read(text_dir, tmp_path):
    d = copy(text_dir("bert"), tmp_path / "bert")
    marker = tmp_path / "unpickled"
    (d / "pytorch_model.bin").write_bytes(pickle.dumps(Unpickled(marker)))
    assert attnviz.load_model(d).run(text="fine").n_tokens == 3
    assert not marker.exists()


def test_damaged_weights_are_refused_then_load_once_repaired(text_dir, tmp_path):
    d = copy(text_dir("gpt2"), tmp_path / "gpt2")
    weights = d / "model.safetensors"
    intact = weights.read_bytes()
    weights.write_bytes(intact[: len(intact) // 2])
    refused(d, "model.safetensors", "damaged", "incomplete metadata")
    weights.write_bytes(b"not safetensors at all")
    refused(d, "damaged")
    weights.write_bytes(intact)
    assert attnviz.load_model(d).run(text="repaired").n_tokens > 0


def test_weights_that_give_no_finite_attention_are_refused(text_dir, tmp_path):
    """A file whose header is sound but whose numbers are not (NaN): the load-time run catches it."""
    from safetensors.torch import load_file, save_file

    d = copy(text_dir("bert"), tmp_path / "bert")
    state = load_file(str(d / "model.safetensors"))
    key = next(k for k in state if "query.weight" in k or "q_proj.weight" in k)
    state[key][:] = float("nan")
    save_file(state, str(d / "model.safetensors"), metadata={"format": "pt"})
    refused(d, "not finite rows that sum to 1")


def test_missing_shard_and_no_weights(text_dir, tmp_path):
    d = copy(text_dir("bert"), tmp_path / "bert")
    shard = "model-00001-of-00002.safetensors"
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": shard}}))
    refused(d, "lacks weight shards", shard)
    (d / "model.safetensors.index.json").unlink()
    (d / "model.safetensors").unlink()
    (d / "model.onnx").write_bytes(b"onnx")
    refused(d, "no model.safetensors", "model.onnx")


def test_config_problems(text_dir, tmp_path):
    d = copy(text_dir("bert"), tmp_path / "bert")
    config = d / "config.json"
    text = config.read_text()
    config.write_text("{not json")
    refused(d, "cannot be read as JSON")
    config.write_text("[1, 2]")
    refused(d, "not a JSON object")
    config.write_text(json.dumps({k: v for k, v in json.loads(text).items() if k != "model_type"}))
    refused(d, "names no model_type")
    config.unlink()
    refused(d, "no config.json")


@pytest.mark.parametrize(("model_type", "words"), [
    ("not-a-model", ["'not-a-model'", "bert", "llama", "vit"]),
    ("convnext", ["'convnext'", "checked"]),
    ("swin", ["Swin", "windows", "stage"]),
    ("mamba", ["Mamba", "no attention"]),
])
def test_unknown_and_refused_families(text_dir, tmp_path, model_type, words):
    d = copy(text_dir("bert"), tmp_path / "model")
    edit_json(d / "config.json", model_type=model_type, auto_map={"AutoModel": "evil.Model"})
    (d / "evil.py").write_text("raise SystemExit('custom code ran')\n")
    refused(d, *words)


def test_missing_tokenizer_and_image_processor(text_dir, vision_dir, tmp_path):
    d = copy(text_dir("bert"), tmp_path / "bert")
    for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (d / f).unlink()
    refused(d, "has no tokenizer", "save_pretrained")
    v = copy(vision_dir("vit"), tmp_path / "vit")
    (v / "preprocessor_config.json").unlink()
    refused(v, "preprocessor_config.json", "resized and normalised")


def test_tokenizer_needing_sentencepiece_is_refused(text_dir, tmp_path):
    """A Marian folder as the hub has it (source.spm, no tokenizer.json): transformers reads it with the
    sentencepiece package, which attnviz does not install; the message says so."""
    d = copy(text_dir("marian"), tmp_path / "marian")
    (d / "tokenizer.json").unlink()
    for f in ("source.spm", "target.spm"):
        (d / f).write_bytes(b"\x00" * 16)
    (d / "vocab.json").write_text('{"</s>": 0, "<unk>": 1}')
    edit_json(d / "tokenizer_config.json", tokenizer_class="MarianTokenizer")
    refused(d, "sentencepiece", "tokenizer.json")


def test_weights_that_do_not_fit_the_config(text_dir, tmp_path):
    d = copy(text_dir("bert"), tmp_path / "bert")
    edit_json(d / "config.json", num_hidden_layers=3)
    refused(d, "do not fit its config.json", "encoder.layer.2")


def test_tokenizer_larger_than_the_embedding(tmp_path):
    d = tmp_path / "bert"
    spec = TEXT["bert"]
    build_text(spec, d)
    from transformers import AutoConfig, BertModel

    config = AutoConfig.from_pretrained(d)
    config.vocab_size = 1000  # MiniLM's tokenizer has 30522 tokens
    BertModel(config).save_pretrained(d)
    refused(d, "30522 tokens", "embeds only 1000")


def test_a_text_directory_through_load_hf_directory_must_be_text(vision_dir):
    from attnviz.models.hf_text import load_hf_directory

    with pytest.raises(ValueError, match="holds a image model, not a text"):
        load_hf_directory(vision_dir("vit"))


def test_refusals_come_before_any_weight_is_read(text_dir, tmp_path, monkeypatch):
    """The file checks refuse before transformers is asked for anything."""
    import transformers

    d = copy(text_dir("bert"), tmp_path / "bert")
    (d / "model.safetensors").write_bytes(b"\x00" * 4)
    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", lambda *a, **k: pytest.fail("weights read"))
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: pytest.fail("tokenizer read"))
    with pytest.raises(ValueError, match="damaged"):
        load_directory(d)
