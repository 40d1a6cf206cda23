"""Generation with SmolLM2: greedy equals transformers' own ``generate``, seeded sampling repeats, a callback stops
it, and the full-sequence attention of each generated token equals its attention at the step that produced it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import attnviz
from attnviz.models.generate import MAX_NEW_TOKENS, generate

PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def smollm2():
    return attnviz.load_model("smollm2-135m")


@pytest.fixture(scope="module")
def greedy(smollm2):
    return generate(smollm2, PROMPT, max_new_tokens=4, record_attention=True)


def test_greedy_equals_transformers_generate(smollm2, greedy):
    prompt = smollm2.tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        want = smollm2.model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=4,
                                      do_sample=False)
    assert greedy.ids == want[0].tolist() and greedy.n_prompt == prompt.shape[1]
    assert greedy.stopped == "length" and greedy.n_generated == 4 and greedy.tokens[greedy.n_prompt] == " Paris"
    assert all(0 < p <= 1 for p in greedy.probabilities)


def test_full_sequence_rows_equal_the_attention_at_generation_time(smollm2, greedy):
    r = smollm2.run_ids(greedy.ids)
    assert r.tokens == greedy.tokens and r.causal
    for k in range(greedy.n_generated):
        rows = greedy.rows(r, k)  # [layer, head, key] over the tokens before generated token k
        assert rows.shape == (30, 9, greedy.position(k))
        np.testing.assert_allclose(rows, greedy.step_attention[k], atol=1e-5, rtol=0)
        np.testing.assert_allclose(rows.sum(-1), 1, atol=1e-5)


def test_relevance_of_a_generated_token(smollm2, greedy):
    rel = greedy.relevance(smollm2, 0)
    assert rel.label == " Paris" and rel.probability == pytest.approx(greedy.probabilities[0], abs=1e-5)
    assert len(rel.scores) == greedy.n_prompt


def test_sampling_is_seeded_and_a_callback_stops(smollm2):
    a = generate(smollm2, PROMPT, max_new_tokens=2, sample=True, seed=7, temperature=1.5)
    b = generate(smollm2, PROMPT, max_new_tokens=2, sample=True, seed=7, temperature=1.5)
    assert a.ids == b.ids and a.step_attention is None
    seen = []
    c = generate(smollm2, PROMPT, max_new_tokens=3, on_token=lambda k, t, label, p: seen.append((label, p)) or k < 2)
    assert c.stopped == "callback" and c.n_generated == 3
    assert seen == list(zip(c.tokens[c.n_prompt:], c.probabilities, strict=True))


def test_stops_at_the_end_of_a_turn(smollm2):
    chat = "<|im_start|>user\nSay yes.<|im_end|>\n<|im_start|>assistant\nYes."  # the turn is complete
    g = generate(smollm2, chat, max_new_tokens=MAX_NEW_TOKENS)
    assert g.stopped == "eos" and g.tokens[g.n_prompt:] == ["<|im_end|>"]


@pytest.mark.parametrize("bad", [0, 65, 2.0, True])
def test_refusals(smollm2, minilm, bad):
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(smollm2, PROMPT, max_new_tokens=bad)
    with pytest.raises(ValueError, match="does not generate"):
        generate(minilm, PROMPT)
