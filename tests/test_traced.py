"""Traced forwards (TorchScript, :mod:`attnviz.models.traced`) give exactly the eager attention, or are not used."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import attnviz
from attnviz.models.traced import trace_attentions
from bench.common import make_text, single_token_words


@pytest.fixture(scope="module")
def dinov2():
    return attnviz.load_model("dinov2-small")


def eager(model, enc: dict) -> tuple[torch.Tensor, ...]:
    with torch.inference_mode():
        return tuple(model.model(**enc, output_attentions=True).attentions)


def test_minilm_is_traced_and_equals_eager_at_every_length(minilm):
    assert minilm.traced is not None
    pool = single_token_words(minilm.tokenizer)
    for n in (3, 9, 130, 512):
        enc = dict(minilm.tokenizer(make_text(pool, n, f"traced-{n}"), return_tensors="pt"))
        assert enc["input_ids"].shape[1] == n and minilm.traced.accepts(enc)
        got = minilm.traced(enc)
        assert all(torch.equal(a, b) for a, b in zip(got, eager(minilm, enc), strict=True))


def test_minilm_pair_run_equals_eager(minilm):
    enc = dict(minilm.tokenizer("Where is the cat?", "It sleeps on the mat, as cats do.", return_tensors="pt"))
    result = minilm.run(text="Where is the cat?", text_pair="It sleeps on the mat, as cats do.")
    want = torch.stack(eager(minilm, enc))[:, 0].numpy()
    assert (result.weights == want).all()


def test_padded_input_runs_eager(minilm):
    enc = dict(minilm.tokenizer(["short", "a longer second text"], padding=True, return_tensors="pt"))
    assert not minilm.traced.accepts(enc)  # traced without padding: a padded mask takes the eager path
    got = minilm.attentions(enc)
    assert all(torch.equal(a, b) for a, b in zip(got, eager(minilm, enc), strict=True))


def test_dinov2_is_traced_and_equals_eager(dinov2):
    assert dinov2.traced is not None
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        want = dinov2.model(pixel_values=x, output_attentions=True).attentions
    assert all(torch.equal(a, b) for a, b in zip(dinov2.traced({"pixel_values": x}), want, strict=True))


class Branchy(torch.nn.Module):
    """Attention whose path depends on the data: a trace bakes in the branch its example took."""

    def forward(self, x: torch.Tensor, output_attentions: bool = True) -> SimpleNamespace:
        scores = x @ x.transpose(-1, -2)
        if x.sum() > 0:  # data-dependent Python branch
            scores = -scores
        return SimpleNamespace(attentions=(scores.softmax(-1),))


def test_a_trace_that_differs_from_eager_is_not_used(caplog):
    positive, negative = torch.arange(12.0).reshape(1, 4, 3) / 10, -torch.arange(15.0).reshape(1, 5, 3) / 10
    assert trace_attentions(Branchy(), {"x": positive}, {"x": positive * 2}, "branchy") is not None
    with caplog.at_level("WARNING"):
        assert trace_attentions(Branchy(), {"x": positive}, {"x": negative}, "branchy") is None
    assert "differs from eager" in caplog.text


def test_a_model_that_cannot_be_traced_is_not_used(caplog):
    class Untraceable(torch.nn.Module):
        def forward(self, x: torch.Tensor, output_attentions: bool = True) -> SimpleNamespace:
            return SimpleNamespace(attentions=("not a tensor",))

    with caplog.at_level("WARNING"):
        assert trace_attentions(Untraceable(), {"x": torch.ones(2)}, {"x": torch.ones(3)}, "untraceable") is None
    assert "tracing its forward failed" in caplog.text


@pytest.mark.parametrize("names", [("x",), ("x", "y")])
def test_example_and_check_must_name_the_same_inputs(names):
    with pytest.raises(ValueError, match="differ"):
        trace_attentions(Branchy(), {"x": torch.ones(1, 2, 2)}, dict.fromkeys(names + ("z",), torch.ones(1)), "b")
