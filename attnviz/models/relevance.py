"""What a prediction depended on: gradient-weighted attention relevance (Chefer et al. 2021) for attnviz's image
classifiers and for a causal language model's next token.

The rule itself is numpy (:mod:`attnviz.analysis.relevance`); here the model runs once with gradients and the
target logit's gradient with respect to every layer's attention weights is taken with ``torch.autograd.grad``.
Nothing of the shared model changes: its parameters are left as they are (their ``requires_grad`` untouched, no
``.grad`` written), the input (pixels or token embeddings) is made to require grad so the graph exists, and the
attention weights are taken from the forward pass of this call only (thread-local recorder or ``attentions``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from attnviz.analysis.relevance import relevance_rollup
from attnviz.models.vision import patch_tokens

if TYPE_CHECKING:
    from PIL import Image

    from attnviz.models.hf_text import HFTextModel
    from attnviz.models.tiny_image import TinyViTImageModel

TEXT_MAX_TOKENS = 256
"""Longest prompt for a causal LM's relevance. Eager attention with gradients keeps several copies of every layer's
weights and what the backward pass needs: SmolLM2's process grows by about 0.7 GB at 256 tokens and 1.5 GB at 512
(``bench/explain_cost.py``), on a server shared by several sessions."""


@dataclass
class Relevance:
    """Gradient-weighted relevance of the input for one prediction.

    Attributes:
        scores: image models ``[rows, cols]`` over the patches; causal LMs ``[token]`` over the prompt. The row of
            the predicting position ([CLS], or the last token) of ``R = Π (I + Ā_l)``; for text the last token's own
            score includes the identity ``R`` starts from (at least 1).
        target: the class index, or the token id, explained.
        label: its class name, or its text.
        probability: the model's probability of the target (softmax of the logits).
        tokens: labels of the scored positions (text: the prompt's tokens; images: the patch labels).
    """

    scores: np.ndarray
    target: int
    label: str
    probability: float
    tokens: list[str]


def _gradients(logit: torch.Tensor, attentions: list[torch.Tensor] | tuple[torch.Tensor, ...]
               ) -> tuple[np.ndarray, np.ndarray]:
    """``[layer, head, query, key]`` weights and the gradient of ``logit`` with respect to them (batch 1)."""
    grads = torch.autograd.grad(logit, list(attentions))
    n_layers, (n_heads, n, _) = len(attentions), attentions[0].shape[1:]
    weights, out = np.empty((2, n_layers, n_heads, n, n), np.float32)
    for i, (a, g) in enumerate(zip(attentions, grads, strict=True)):
        weights[i], out[i] = a.detach()[0].numpy(), g[0].numpy()
    return weights, out


def _resolve(target: int | str | None, logits: torch.Tensor, n: int, name: str,
             from_text: Callable[[str], int] | None = None) -> int:
    """The target index: the arg-max when ``None``; an index in range; or (``from_text``) a label."""
    if target is None:
        return int(logits.argmax())
    if isinstance(target, str) and from_text is not None:
        return from_text(target)
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
        raise ValueError(f"The target must be None (the prediction), an index or a {name}, got {target!r}.")
    if not 0 <= int(target) < n:
        raise ValueError(f"The target must be in 0..{n - 1}, got {target}.")
    return int(target)


def image_relevance(model: TinyViTImageModel, image: Image.Image, target: int | str | None = None) -> Relevance:
    """Relevance of each patch for the class ``target`` (the predicted class when ``None``).

    Args:
        image: RGB picture (preprocessed as :meth:`TinyViTImageModel.run` does).
        target: class index, class name, or ``None``.
    Returns:
        :class:`Relevance` with ``scores[rows, cols]``.
    Raises:
        ValueError: unknown class name or index out of range.
    """
    x = model.inputs(image)[0].requires_grad_(True)  # [1, channels, size, size]

    def by_name(name: str) -> int:
        if name not in model.classes:
            raise ValueError(f"Unknown class {name!r}; the classes are {', '.join(model.classes)}.")
        return model.classes.index(name)

    with torch.enable_grad(), model.recorder.record(keep_graph=True) as store:
        logits = model.model(x)[0]  # [n_classes]
        if len(store) != model.n_layers:
            raise RuntimeError(f"recorded {len(store)} attention maps for {model.n_layers} layers")
        t = _resolve(target, logits, len(model.classes), "class name", by_name)
        weights, grads = _gradients(logits[t], store)
    r = relevance_rollup(weights, grads)  # [query, key]
    prob = float(torch.softmax(logits.detach(), -1)[t])
    rows, cols = model.grid
    return Relevance(r[0, 1:].reshape(rows, cols), t, model.classes[t], prob, patch_tokens(model.grid)[1:])


def text_relevance(model: HFTextModel, text: str | None = None, ids: list[int] | None = None,
                   target: int | str | None = None) -> Relevance:
    """Relevance of each prompt token for the next token ``target`` (the most probable one when ``None``).

    Args:
        text: the prompt (tokenized as :meth:`HFTextModel.run` does), or
        ids: its token ids.
        target: a token id, a text that is exactly one token, or ``None``.
    Returns:
        :class:`Relevance` with ``scores[token]``.
    Raises:
        ValueError: not a causal model; no prompt; a prompt over :data:`TEXT_MAX_TOKENS` tokens; a bad target.
    """
    if not model.causal:
        raise ValueError(f"{model.name} predicts no next token: gradient relevance is for causal language models "
                         "(smollm2-135m) and the image classifiers.")
    if ids is None:
        enc, _, _ = model.encode(text)
        ids = enc["input_ids"][0].tolist()
    if not ids:
        raise ValueError("The prompt has no tokens: type some words.")
    if len(ids) > TEXT_MAX_TOKENS:
        raise ValueError(f"Relevance is computed for prompts of up to {TEXT_MAX_TOKENS} tokens (gradients through "
                         f"every attention map take much memory); this one has {len(ids)}: shorten it.")
    tok = model.tokenizer
    vocab = model.model.get_output_embeddings().weight.shape[0]

    def by_text(s: str) -> int:
        one = tok(s, add_special_tokens=False)["input_ids"]
        if len(one) != 1:
            raise ValueError(f"The target {s!r} is {len(one)} tokens; give one token (or its id).")
        return int(one[0])

    ids_t = torch.tensor([ids])
    with torch.enable_grad():
        embeds = model.model.get_input_embeddings()(ids_t).detach().requires_grad_(True)  # [1, token, dim]
        out = model.model(inputs_embeds=embeds, output_attentions=True, use_cache=False, logits_to_keep=1)
        logits = out.logits[0, -1]  # [vocab]
        t = _resolve(target, logits, vocab, "one-token text", by_text)
        weights, grads = _gradients(logits[t], out.attentions)
    r = relevance_rollup(weights, grads)
    prob = float(torch.softmax(logits.detach().float(), -1)[t])
    from attnviz.models.hf_text import token_labels

    return Relevance(r[-1], t, token_labels(tok, [t])[0], prob, token_labels(tok, ids))
