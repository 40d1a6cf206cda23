"""SmolLM2-135M (a causal decoder, from GGUF): real weights, causal masks, labels, and the converted-model cache."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

import attnviz
from attnviz.models import capture, dir_cache
from attnviz.models.token_text import byte_level_label

TEXT = "The animal didn't cross the street because it was too tired."


@pytest.fixture(scope="session")
def smollm2():
    """Loaded once per session (~15 s cold from GGUF, ~1 s from the cache)."""
    return attnviz.load_model("smollm2-135m")


def test_registered_as_causal_text_model():
    assert "smollm2-135m" in attnviz.list_models("text")


def test_weights_equal_model_output_attentions(smollm2):
    r = smollm2.run(text=TEXT)
    enc = smollm2.tokenizer(TEXT, return_tensors="pt")
    smollm2.model.set_attn_implementation("eager")  # transformers' own, not attnviz's buffered one
    try:
        with torch.inference_mode():
            ref = torch.stack(smollm2.model(**enc, output_attentions=True).attentions)[:, 0].numpy()
    finally:
        smollm2.model.set_attn_implementation(capture.IMPLEMENTATION)
    t = len(r.tokens)
    assert r.weights.dtype == np.float32 and r.weights.shape == (30, 9, t, t) == ref.shape
    np.testing.assert_allclose(r.weights, ref, atol=1e-6, rtol=0)
    np.testing.assert_allclose(r.weights.sum(-1), 1.0, atol=1e-5)
    upper = np.triu(np.ones((t, t), bool), k=1)
    assert np.all(r.weights[..., upper] == 0)  # a query never sees a later key: exactly 0, not just small
    assert np.all(r.weights[..., 0, 0] == 1)  # so the first token attends only to itself
    assert r.causal and smollm2.causal and r.kind == "text" and r.model == "smollm2-135m"
    assert not r.special.any() and not r.truncated


def test_token_labels_read_as_text(smollm2):
    assert smollm2.run(text=TEXT).tokens[:4] == ["The", " animal", " didn", "'t"]
    tokens = smollm2.run(text="café\nnaïve 😀").tokens
    assert "é" in "".join(tokens) and "ï" in "".join(tokens) and "\\n" in tokens
    assert not any("Ã" in t or "Ġ" in t or "Ċ" in t for t in tokens)
    assert byte_level_label("ĠðŁĺ") == " \\xf0\\x9f\\x98"  # part of an emoji: its bytes, escaped
    assert byte_level_label("<|im_start|>") == "<|im_start|>" and byte_level_label("ĉx") == "\\tx"


def test_sentence_pair_is_refused(smollm2):
    with pytest.raises(ValueError, match="causal"):
        smollm2.run(text="Where is the cat?", text_pair="It sleeps.")


def test_long_text_is_cut_to_4096_tokens(smollm2):
    """Inputs are cut at 4,096 tokens (the tokenizer alone: a run that long is measured in bench/long_inputs.py);
    700 tokens, past the old 512 limit, run whole and causal."""
    enc, cut, n_chars = smollm2.encode("attention " * 5000)
    assert cut and enc["input_ids"].shape == (1, 4096) and smollm2.max_tokens == 4096 and n_chars == 50000
    r = smollm2.run(text="attention " * 700)
    assert not r.truncated and r.n_tokens == 701
    for layer, head in ((0, 0), (29, 8)):
        w = r.head(layer, head)
        assert np.all(np.triu(w, k=1) == 0)
        np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)


def test_converted_folder_round_trips_exactly(smollm2):
    """What the cache stores (safetensors + config + tokenizer) gives the same attention as the loaded model."""
    from attnviz.models.smollm import _load_dir, _save

    with tempfile.TemporaryDirectory(prefix="attnviz-smollm-") as tmp:  # 540 MB: not kept like tmp_path
        folder = Path(tmp)
        _save((smollm2.model, smollm2.tokenizer), folder)
        assert sorted(p.suffix for p in folder.iterdir()) == [".jinja", ".json", ".json", ".json", ".safetensors"]
        model, tokenizer = _load_dir(folder)
        enc = tokenizer(TEXT, return_tensors="pt")
        assert enc["input_ids"].tolist() == smollm2.tokenizer(TEXT, return_tensors="pt")["input_ids"].tolist()
        with torch.inference_mode():
            a = torch.stack(model(**enc, output_attentions=True).attentions)
            b = torch.stack(smollm2.model(**enc, output_attentions=True).attentions)
        assert torch.equal(a, b)
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()  # still tied
        del model


class FakeConverter:
    """Stands in for a slow conversion: counts builds and loads, writes two small files."""

    def __init__(self) -> None:
        self.builds = 0
        self.loads = 0

    def build(self) -> dict:
        self.builds += 1
        return {"w": list(range(1000)), "from": "build"}

    def save(self, obj: dict, directory: Path) -> None:
        (directory / "weights.json").write_text(json.dumps(obj["w"]))
        (directory / "config.json").write_text('{"n": 1000}')

    def load(self, directory: Path) -> dict:
        self.loads += 1
        return {"w": json.loads((directory / "weights.json").read_text()), "from": "cache"}

    def __call__(self, source: dict | None = None) -> dict:
        return dir_cache.load_cached("fake", source or {"v": 1}, self.build, self.save, self.load)


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ATTNVIZ_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_cache_is_built_once_then_loaded(cache):
    conv = FakeConverter()
    assert conv()["from"] == "build" and conv()["from"] == "cache" and conv()["from"] == "cache"
    assert (conv.builds, conv.loads) == (1, 2)
    assert dir_cache.problem(cache / "fake", {"v": 1}) is None
    assert sorted(p.name for p in (cache / "fake").iterdir()) == ["config.json", "manifest.json", "weights.json"]
    assert not list(cache.glob(".fake.tmp-*"))


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "manifest"])
def test_damaged_cache_is_detected_and_rebuilt(cache, damage, caplog):
    conv = FakeConverter()
    conv()
    weights = cache / "fake" / "weights.json"
    data = bytearray(weights.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01  # one bit, same size
        weights.write_bytes(bytes(data))
    elif damage == "truncate":
        weights.write_bytes(bytes(data[:-10]))
    elif damage == "delete":
        weights.unlink()
    else:
        (cache / "fake" / "manifest.json").write_text("{not json")
    assert dir_cache.problem(cache / "fake", {"v": 1}) is not None
    with caplog.at_level("WARNING", logger="attnviz.models.dir_cache"):
        assert conv()["from"] == "build" and conv.builds == 2
    assert any("building the cache of fake" in r.getMessage() for r in caplog.records)
    assert dir_cache.problem(cache / "fake", {"v": 1}) is None  # rebuilt whole
    assert conv()["w"] == list(range(1000)) and conv.builds == 2


def test_stale_source_is_rebuilt(cache):
    conv = FakeConverter()
    conv({"v": 1})
    conv({"v": 2})
    assert conv.builds == 2 and dir_cache.problem(cache / "fake", {"v": 2}) is None


def test_unloadable_cache_is_rebuilt(cache):
    conv = FakeConverter()
    conv()
    conv.load = lambda d: (_ for _ in ()).throw(ValueError("bad tensor"))
    assert conv()["from"] == "build" and conv.builds == 2


def test_unwritable_cache_still_loads(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("ATTNVIZ_CACHE", str(blocker / "cache"))
    conv = FakeConverter()
    assert conv()["from"] == "build" and conv()["from"] == "build"


def test_text_page_runs_smollm2(smollm2):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "pages/1_Text.py"), default_timeout=300).run()
    at.selectbox(key="text_model").set_value("smollm2-135m")
    next(b for b in at.button if b.label == "Run").click()
    at.run()
    assert not at.exception and not at.error
    assert any("smollm2-135m" in c.value and "causal (decoder)" in c.value for c in at.caption)
    assert " animal" in at.get("plotly_chart")[0].proto.spec
    assert '"name":"masked"' in at.get("plotly_chart")[0].proto.spec.replace(" ", "")  # later keys drawn grey


def test_loaded_once_per_process(smollm2):
    from attnviz.web import runs

    assert attnviz.load_model("smollm2-135m") is smollm2
    assert runs.get_model("smollm2-135m") is smollm2  # the pages share the same loaded model


def test_decoder_lines_and_statistics_never_look_ahead(smollm2):
    from attnviz.analysis import EdgeRule, head_stats
    from attnviz.render.graph import head_graph

    r = smollm2.run(text=TEXT)
    g = head_graph(r.weights[3], r.tokens, r.tokens, EdgeRule("top_k", 3))
    assert len(g.edges) and np.all(g.edges.key <= g.edges.query)  # the head view draws no line to a later token
    stats = head_stats(r.weights, r.tokens, r.special)
    assert np.all(stats.next == 0)  # a causal head never attends to the next token
    assert np.all(stats.cls == 0) and np.all(stats.sep == 0)  # its input has no [CLS] or [SEP]


def test_text_page_says_decoder_in_every_view(smollm2):
    from tests.text_app import text_page

    for view in ("Head view", "Across layers", "Head statistics"):
        at = text_page(text_model="smollm2-135m", text_view=view).run()
        assert not at.exception and not at.error
        assert any("causal (decoder)" in c.value for c in at.caption)
    assert any("is a decoder" in c.value for c in at.caption)  # why its [CLS]/[SEP] shares are 0
