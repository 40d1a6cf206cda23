"""date-seq2seq: the generator, the shipped model's accuracy, its attention (shapes, causality, the recorder's
order checked against an independent computation, alignment of the year) and bad input."""
from __future__ import annotations

import datetime as dt
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

import attnviz
from attnviz.models.seq2seq import DateSeq2Seq, has_year, is_iso_date
from attnviz.train.dates import FORMATS, HOLDOUT_EVERY, generate, ordinal_suffix, render

N_HELDOUT = 300


@pytest.fixture(scope="module")
def model() -> DateSeq2Seq:
    return attnviz.load_model("date-seq2seq")


@pytest.fixture(scope="module")
def heldout():
    return generate(N_HELDOUT, seed=2024, held_out=True)


# ------------------------------------------------------------------ the generator

def test_generator_is_seeded_and_correct():
    a, b = generate(50, seed=3), generate(50, seed=3)
    assert a == b and a != generate(50, seed=4)
    for e in generate(500, seed=5):
        date = dt.date.fromisoformat(e.iso)
        assert e.text[e.year_span[0]:e.year_span[1]] == f"{date.year:04d}"
        assert date.toordinal() % HOLDOUT_EVERY != 0  # training dates never include held-out ones
        if "day" in e.text and "," in e.text:  # a weekday, if written, is the right one
            assert e.text.split(",")[0] in (date.strftime("%A"), date.strftime("%a"))
    assert all(dt.date.fromisoformat(e.iso).toordinal() % HOLDOUT_EVERY == 0 for e in generate(200, 1, True))


def test_formats_and_suffixes():
    d = dt.date(2026, 11, 21)
    assert render(d, "{Weekday}, the {dth} of {Month} {Y}")[0] == "Saturday, the 21st of November 2026"
    assert render(d, "{Mon} {d}, {Y}") == ("Nov 21, 2026", (8, 12))
    assert render(d, "{m}/{d}/{Y}")[0] == "11/21/2026"
    assert render(d, "{Y}.{mm}.{dd}")[0] == "2026.11.21"
    assert [ordinal_suffix(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 31)] == \
        ["st", "nd", "rd", "th", "th", "th", "th", "st", "nd", "rd", "st"]
    assert len(FORMATS) >= 20


# ------------------------------------------------------------------ the shipped model

def test_registered_as_seq2seq(model):
    assert "date-seq2seq" in attnviz.list_models("seq2seq")
    assert model.kind == "seq2seq"
    assert model.meta["heldout"]["exact_match"] >= 0.98  # the recorded figure


def test_heldout_exact_match(model, heldout):
    outputs = model.translate_batch([e.text for e in heldout])
    acc = np.mean([o == e.iso for o, e in zip(outputs, heldout, strict=True)])
    assert acc >= 0.98, acc


@pytest.mark.parametrize("text", ["21 November 2026", "Nov 21, 2026", "11/21/2026", "2026.11.21",
                                  "Saturday, the 21st of November 2026", "  SATURDAY,   the 21ST of november 2026 "])
def test_examples_from_the_issue(model, text):
    assert model.run(text=text).extras.output == "2026-11-21"


def test_result_shapes_and_invariants(model):
    r = model.run(text="Saturday, the 21st of November 2026")
    cross, dec = r.parts["cross"], r.parts["decoder"]
    S, T = len("saturday, the 21st of november 2026"), len("2026-11-21") + 1
    assert r.kind == cross.kind == "seq2seq" and r.extras.output == "2026-11-21"
    assert r.weights.shape == (2, 4, S, S) and r.tokens[8] == "," and r.tokens[9] == "␣"
    assert dec.weights.shape == (2, 4, T, T) and dec.causal
    assert cross.weights.shape == (2, 4, T, S) and cross.key_tokens == r.tokens
    assert cross.tokens == list("2026-11-21") + ["</s>"] == dec.tokens
    assert dec.keys == ["<s>"] + list("2026-11-21")
    for w in (r.weights, dec.weights, cross.weights):
        assert w.dtype == np.float32
        np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
    assert np.all(np.triu(dec.weights, 1) == 0)  # a step never reads a later position
    assert is_iso_date(r.extras.output) and r.extras.valid_date


def test_recorded_weights_equal_an_independent_computation(model):
    """Recompute layer 1's cross-attention and encoder layer 0 from the modules' own inputs and weights: the
    recorder's call order (encoder, then decoder self/cross per layer) must map to the right parts."""
    seen = {}

    def keep(name):
        def hook(module, args, out):
            seen[name] = (args[0].detach(), args[1].detach())
        return hook

    net = model.net
    handles = [net.decoder[1].cross_attn.register_forward_hook(keep("cross1")),
               net.encoder[0].self_attn.register_forward_hook(keep("enc0"))]
    try:
        r = model.run(text="Nov 21, 2026")
    finally:
        for h in handles:
            h.remove()

    def weights(att, x, mem):
        H, D = att.n_heads, x.shape[-1] // att.n_heads
        q = (x[0] @ att.q.weight.T + att.q.bias).reshape(-1, H, D).transpose(0, 1).double()
        k = (mem[0] @ att.k.weight.T + att.k.bias).reshape(-1, H, D).transpose(0, 1).double()
        s = q @ k.transpose(1, 2) / math.sqrt(D)
        return torch.softmax(s, dim=-1).numpy()

    with torch.inference_mode():
        cross1 = weights(net.decoder[1].cross_attn, *seen["cross1"])
        enc0 = weights(net.encoder[0].self_attn, *seen["enc0"])
    np.testing.assert_allclose(r.parts["cross"].weights[1], cross1, atol=1e-5)
    np.testing.assert_allclose(r.weights[0], enc0, atol=1e-5)


def test_year_outputs_attend_to_the_year(model, heldout):
    """For the four year characters of the output, the strongest cross-attention of at least one head (any
    layer) lies inside the year of the input, for at least 90 % of held-out examples."""
    outputs, crosses = model.cross_attention_batch([e.text for e in heldout])
    hits = []
    for e, out, cross in zip(heldout, outputs, crosses, strict=True):  # cross: [layer, head, output, input]
        top = cross[:, :, :4, :].argmax(-1)                                # [layer, head, 4]
        inside = (top >= e.year_span[0]) & (top < e.year_span[1])
        hits.append(out[:4] == e.iso[:4] and bool(inside.all(-1).any()))
    assert np.mean(hits) >= 0.90, np.mean(hits)


def test_batched_cross_attention_equals_single_runs(model):
    texts = ["Nov 21, 2026", "Saturday, the 21st of November 2026", "1/2/1903"]
    outputs, crosses = model.cross_attention_batch(texts)
    for text, out, cross in zip(texts, outputs, crosses, strict=True):
        r = model.run(text=text)
        assert out == r.extras.output
        np.testing.assert_allclose(cross, r.parts["cross"].weights, atol=1e-5)


# ------------------------------------------------------------------ input handling and threads

@pytest.mark.parametrize("bad, msg", [("", "empty"), ("   \t\n", "empty"), ("21 Nov 2026 😀", "cannot read"),
                                      ("21 ноября 2026", "cannot read"), (None, "text"), (2026, "text")])
def test_bad_input_is_a_value_error(model, bad, msg):
    with pytest.raises(ValueError, match=msg):
        model.run(text=bad)


def test_long_input_is_cut_and_said(model):
    r = model.run(text="Saturday, the 21st of November 2026 " + "and more words " * 20)
    assert r.truncated and len(r.tokens) <= model.max_chars
    assert r.parts["cross"].truncated
    assert not model.run(text="Nov 21, 2026").truncated


def test_concurrent_runs_match_sequential(model):
    texts = ["Nov 21, 2026", "Tue, 4 Jul 1776", "31.12.2099", "the 3rd of March, 1999"]
    expected = {t: model.run(text=t) for t in texts}
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda t: (t, model.run(text=t)), texts * 6))
    for t, r in results:
        assert r.extras.output == expected[t].extras.output
        np.testing.assert_allclose(r.parts["cross"].weights, expected[t].parts["cross"].weights, atol=1e-6)
        np.testing.assert_allclose(r.weights, expected[t].weights, atol=1e-6)


def test_every_learnt_format_has_a_year_and_non_dates_do_not(model):
    """``has_year`` is true for every generated date (all formats, held out or not) and false for text without a
    year, where the page warns that the output is a guess."""
    examples = generate(400, seed=7) + generate(100, seed=8, held_out=True)
    assert {e.fmt for e in examples} == set(FORMATS)
    assert all(has_year(e.text.lower()) for e in examples)
    for text in ("hello world", "nov 21", "21.11.99", "3000", "12345 678"):
        assert not has_year(text), text
        assert model.run(text=text).extras.has_year is False
    assert model.run(text="Nov 21, 2026").extras.has_year is True

