"""Generation with a causal language model (SmolLM2), then the attention of the whole sequence, so each generated
token can be looked at: the rows of the position that predicted it over everything before it (all heads), and its
gradient relevance over that prefix.

Token ``k`` of the continuation sits at position ``p = n_prompt + k``; it was chosen from the output at ``p - 1``,
so "its attention" is row ``p - 1`` of every head, over keys ``0 .. p - 1``: exactly what the model computed at the
step that produced it (the full-sequence run gives the same numbers; tested to 1e-5). Its relevance is
:func:`attnviz.models.relevance.text_relevance` of the prefix ``ids[:p]`` with the token as target.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from attnviz.models.relevance import Relevance, text_relevance

if TYPE_CHECKING:
    from attnviz.models.hf_text import HFTextModel
    from attnviz.result import AttentionResult

log = logging.getLogger(__name__)

MAX_NEW_TOKENS = 64
OnToken = Callable[[int, int, str, float], bool | None]
"""Called after each generated token as ``on_token(k, token_id, label, probability)``; returning False stops the
generation."""


@dataclass
class Generation:
    """A prompt and its continuation.

    Attributes:
        ids: token ids of the prompt then the generated tokens.
        n_prompt: how many of them are the prompt.
        tokens: labels of all ids.
        probabilities: ``[generated]`` the probability each generated token had when it was chosen.
        stopped: ``"eos"`` (the model ended its turn), ``"length"`` (``max_new_tokens`` reached) or ``"callback"``.
        step_attention: when recorded, per generated token ``[layer, head, key]`` float32: the attention at the step
            that produced it (keys ``0 .. p - 1``).
    """

    ids: list[int]
    n_prompt: int
    tokens: list[str]
    probabilities: list[float]
    stopped: str
    step_attention: list[np.ndarray] | None = None

    @property
    def n_generated(self) -> int:
        return len(self.ids) - self.n_prompt

    def position(self, k: int) -> int:
        """Position of generated token ``k`` (0-based) in :attr:`ids`."""
        if not 0 <= k < self.n_generated:
            raise ValueError(f"generated token must be in 0..{self.n_generated - 1}, got {k}")
        return self.n_prompt + k

    def rows(self, result: AttentionResult, k: int) -> np.ndarray:
        """The attention that produced generated token ``k``: ``[layer, head, key]`` over keys ``0 .. p - 1``, from the
        full-sequence ``result`` (:meth:`HFTextModel.run_ids` of :attr:`ids`)."""
        p = self.position(k)
        return np.stack([np.stack([result.head(layer, h)[p - 1, :p] for h in range(result.n_heads)])
                         for layer in range(result.n_layers)])

    def relevance(self, model: HFTextModel, k: int) -> Relevance:
        """Gradient relevance of the prefix for generated token ``k`` (the prefix is bounded as prompts are)."""
        p = self.position(k)
        return text_relevance(model, ids=self.ids[:p], target=self.ids[p])


@torch.inference_mode()
def generate(model: HFTextModel, text: str | None = None, *, ids: list[int] | None = None,
             max_new_tokens: int = 32, sample: bool = False, seed: int = 0, temperature: float = 1.0,
             on_token: OnToken | None = None, record_attention: bool = False) -> Generation:
    """Continue a prompt: greedy (the most probable token each step) or, with ``sample``, sampled from the
    temperature-scaled distribution with a seeded generator (the same seed gives the same text).

    Args:
        text / ids: the prompt, as text (tokenized as :meth:`HFTextModel.run` does) or token ids.
        max_new_tokens: 1 .. :data:`MAX_NEW_TOKENS`; the prompt and the continuation must fit ``model.max_tokens``.
        on_token: called after each token; returning False stops.
        record_attention: keep each step's attention row (for checking; the full-sequence run gives the same).
    Returns:
        :class:`Generation`.
    Raises:
        ValueError: not a causal model, no prompt, a bad ``max_new_tokens`` or ``temperature``, too long.
    """
    from attnviz.models.hf_text import token_labels

    if not model.causal:
        raise ValueError(f"{model.name} does not generate text: choose a causal model (smollm2-135m).")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) \
            or not 1 <= max_new_tokens <= MAX_NEW_TOKENS:
        raise ValueError(f"max_new_tokens must be an integer in 1..{MAX_NEW_TOKENS}, got {max_new_tokens!r}")
    if sample and not temperature > 0:
        raise ValueError(f"temperature must be above 0, got {temperature}")
    if ids is None:
        enc, _, _ = model.encode(text)
        ids = enc["input_ids"][0].tolist()
    ids = [int(i) for i in ids]
    if not ids:
        raise ValueError("The prompt has no tokens: type some words.")
    if len(ids) + max_new_tokens > model.max_tokens:
        raise ValueError(f"The prompt ({len(ids)} tokens) and {max_new_tokens} new tokens exceed the model's "
                         f"{model.max_tokens}: shorten the prompt.")
    eos = _eos_ids(model)
    gen = torch.Generator().manual_seed(int(seed)) if sample else None
    out_ids, probs, steps = list(ids), [], [] if record_attention else None
    past, feed, stopped = None, torch.tensor([ids]), "length"
    for k in range(max_new_tokens):
        out = model.model(input_ids=feed, past_key_values=past, use_cache=True, output_attentions=record_attention,
                          logits_to_keep=1)
        past = out.past_key_values
        logits = out.logits[0, -1].float()
        p = torch.softmax(logits, -1)
        if sample:
            token = int(torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=gen))
        else:
            token = int(logits.argmax())
        if steps is not None:
            steps.append(torch.stack([a[0, :, -1] for a in out.attentions]).float().numpy())  # [layer, head, key]
        out_ids.append(token)
        probs.append(float(p[token]))
        feed = torch.tensor([[token]])
        if on_token is not None and on_token(k, token, token_labels(model.tokenizer, [token])[0],
                                             probs[-1]) is False:
            stopped = "callback"
            break
        if token in eos:
            stopped = "eos"
            break
    log.debug("%s generated %d tokens (%s)", model.name, len(out_ids) - len(ids), stopped)
    return Generation(out_ids, len(ids), token_labels(model.tokenizer, out_ids), probs, stopped, steps)


def _eos_ids(model: HFTextModel) -> set[int]:
    """The ids that end a generation: the generation config's and the tokenizer's end-of-sequence tokens."""
    found = getattr(getattr(model.model, "generation_config", None), "eos_token_id", None)
    ids = set(found if isinstance(found, list) else [] if found is None else [found])
    if model.tokenizer.eos_token_id is not None:
        ids.add(int(model.tokenizer.eos_token_id))
    return ids
