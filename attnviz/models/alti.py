"""ALTI (Ferrando et al. 2022) for attnviz's models: one small adapter per family says what its attention block is
made of (which norm, the value and output projections, a layer scale); the arithmetic is numpy
(:mod:`attnviz.analysis.alti`).

Families: BERT (MiniLM; post-norm LayerNorm), Llama (SmolLM2; pre-norm RMSNorm, grouped-query values), DINOv2
(pre-norm LayerNorm, layer scale) and attnviz's TinyViT (pre-norm LayerNorm). Others are refused with a ValueError.

Cost: every layer makes ``query x key x dim`` vectors, ``heads`` products each: ``layers * heads * tokens**2 * dim``
multiply-adds, made a block of queries at a time. Measured on this project's 2-core machine (``bench/explain_cost.py``,
quiet machine): SmolLM2 0.7 s at 128 tokens, 1.3 s at 256, 3.7 s at 512 (+0.66 GB, most of it the model's 30 layers
of attention weights); MiniLM 1.3 s at 512; DINOv2 0.5 s; the tiny ViTs 10 ms. Inputs above :data:`MAX_WORK`
(SmolLM2 beyond its 512-token limit, or a larger local model) are refused.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from attnviz.analysis.alti import LayerParts, PostNorm, alti_rollup, layer_contributions
from attnviz.models.base import AttentionModel
from attnviz.models.tiny_vit import TinyViT

log = logging.getLogger(__name__)

MAX_WORK = 4.5e10
"""Largest ``layers * heads * tokens**2 * dim`` computed: SmolLM2 at 512 tokens is 4.1e10 (about 4 s)."""
WORK_PER_SECOND = 3e9
"""Multiply-adds of :func:`work` per second for :func:`estimate_seconds`, on this project's 2-core machine when quiet:
DINOv2 does 1.8e9 in about 0.5 s, SmolLM2 at 512 tokens 4.1e10 in 3.7 s; the rate grows with the size, so the
estimate errs long for long inputs. Under load everything takes two to three times longer."""
WEIGHT_BYTES_PER_SECOND = 2e9
"""The forward pass reads every weight once: about this many bytes per second (SmolLM2's 540 MB: ~0.3 s)."""

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each layer."""


@dataclass
class Alti:
    """ALTI of one input.

    Attributes:
        layers: ``[layer, query, key]`` float32, each layer's contributions ``C_l`` (rows sum to 1).
        rollup: ``[query, key]`` float32, ``C_L ⋯ C_1``: how much each input token makes up each output.
        tokens: labels of the positions (as :meth:`AttentionModel.run` gives them).
    """

    layers: np.ndarray
    rollup: np.ndarray
    tokens: list[str]


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().numpy()


def _per_head(v: torch.Tensor, o_weight: torch.Tensor, n_heads: int, kv_of_head: list[int] | None = None
              ) -> torch.Tensor:
    """``f_h(x_j) = v^h_j W_O^h``: values ``[token, kv_heads * head_dim]`` through each head's slice of the output
    projection's weight ``[dim, heads * head_dim]`` -> ``[head, token, dim]``."""
    n, _ = v.shape
    head_dim = o_weight.shape[1] // n_heads
    v = v.view(n, -1, head_dim).transpose(0, 1)  # [kv_head, token, head_dim]
    if kv_of_head is not None:
        v = v[kv_of_head]  # [head, token, head_dim]: each query head's shared value head
    wo = o_weight.view(o_weight.shape[0], n_heads, head_dim).permute(1, 2, 0)  # [head, head_dim, dim]
    return v @ wo


def _bias(linear: torch.nn.Linear, dim: int) -> torch.Tensor:
    return linear.bias if linear.bias is not None else torch.zeros(dim)


def bert_parts(model: torch.nn.Module, hidden: tuple, attentions: tuple) -> Iterator[LayerParts]:
    """BERT (post-norm): ``LN(x + Σ α f(x) + b_O)``; ``f_h(x) = (x W_V^h + b_V^h) W_O^h``."""
    cfg = model.config
    for layer, x, a in zip(model.encoder.layer, hidden, attentions, strict=False):
        x = x[0]  # [token, dim]
        att, out = layer.attention.self, layer.attention.output
        f = _per_head(att.value(x), out.dense.weight, cfg.num_attention_heads)
        ln = out.LayerNorm
        yield LayerParts(_np(x), _np(a[0]), _np(f), _np(out.dense.bias),
                         PostNorm(_np(ln.weight), _np(ln.bias), float(ln.eps)))


def llama_parts(model: torch.nn.Module, hidden: tuple, attentions: tuple) -> Iterator[LayerParts]:
    """Llama (pre-norm RMSNorm): ``x + Σ α f(x) + b_O``; ``f_h(x) = RMSNorm(x) W_V^{g(h)} W_O^h`` with the value head
    ``g(h)`` shared by a group of query heads."""
    cfg = model.config
    n_heads, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
    groups = [h // (n_heads // n_kv) for h in range(n_heads)]
    for layer, x, a in zip(model.model.layers, hidden, attentions, strict=False):
        x = x[0]
        att = layer.self_attn
        f = _per_head(att.v_proj(layer.input_layernorm(x)), att.o_proj.weight, n_heads, groups)
        yield LayerParts(_np(x), _np(a[0]), _np(f), _np(_bias(att.o_proj, x.shape[-1])), causal=True)


def dinov2_parts(model: torch.nn.Module, hidden: tuple, attentions: tuple) -> Iterator[LayerParts]:
    """DINOv2 (pre-norm LayerNorm, layer scale ``λ``): ``x + λ ⊙ (Σ α f(x) + b_O)``."""
    n_heads = model.config.num_attention_heads
    for layer, x, a in zip(model.encoder.layer, hidden, attentions, strict=False):
        x = x[0]
        att, scale = layer.attention, layer.layer_scale1.lambda1  # [dim]
        f = _per_head(att.v_proj(layer.norm1(x)), att.o_proj.weight, n_heads) * scale
        yield LayerParts(_np(x), _np(a[0]), _np(f), _np(_bias(att.o_proj, x.shape[-1]) * scale))


def tinyvit_parts(model: TinyViT, pixels: torch.Tensor) -> Iterator[LayerParts]:
    """attnviz's TinyViT (pre-norm LayerNorm): ``x + Σ α f(x) + b_O``, run block by block."""
    x = model.embed(pixels)  # [1, token, dim]
    for block in model.blocks:
        att = block.attn
        n, dim = x.shape[1:]
        q, k, v = att.qkv(block.norm1(x)).view(1, n, 3, att.heads, dim // att.heads).permute(2, 0, 3, 1, 4)
        a = att.attend((q @ k.transpose(-2, -1)) * att.scale)[0]  # [head, query, key], as the block computes it
        f = _per_head(v[0].transpose(0, 1).reshape(n, dim), att.proj.weight, att.heads)
        yield LayerParts(_np(x[0]), _np(a), _np(f), _np(_bias(att.proj, dim)))
        x = block(x)


HF_FAMILIES = {"bert": bert_parts, "llama": llama_parts, "dinov2": dinov2_parts}


def family(model: AttentionModel) -> str:
    """The ALTI adapter's family of an attnviz model (``"tinyvit"``, ``"bert"``, ``"llama"``, ``"dinov2"``).

    Raises:
        ValueError: another architecture.
    """
    inner = getattr(model, "model", None)
    if isinstance(inner, TinyViT):
        return "tinyvit"
    kind = getattr(getattr(inner, "config", None), "model_type", None)
    if kind in HF_FAMILIES and model.kind in ("text", "image"):
        return kind
    raise ValueError(f"ALTI is implemented for BERT (minilm), Llama (smollm2-135m), DINOv2 (dinov2-small) and "
                     f"attnviz's tiny ViTs; {model.name!r} ({kind or type(inner).__name__}) is not one of them.")


def work(model: AttentionModel, n_tokens: int) -> float:
    """``layers * heads * tokens**2 * dim`` of ALTI on ``n_tokens`` positions of ``model`` (a supported family)."""
    inner = model.model
    if isinstance(inner, TinyViT):
        cfg = inner.cfg
        return float(cfg.depth * cfg.heads * n_tokens ** 2 * cfg.dim)
    cfg = inner.config
    return float(cfg.num_hidden_layers * cfg.num_attention_heads * n_tokens ** 2 * cfg.hidden_size)


def estimate_seconds(model: AttentionModel, n_tokens: int) -> float:
    """Estimated seconds of :func:`alti` on ``n_tokens`` positions, on a quiet machine: the forward pass (reading the
    weights) and the decomposition (:func:`work`)."""
    weight_bytes = sum(p.numel() * p.element_size() for p in model.model.parameters())
    return weight_bytes / WEIGHT_BYTES_PER_SECOND + work(model, n_tokens) / WORK_PER_SECOND


def _check_work(n_layers: int, n_heads: int, n: int, dim: int) -> None:
    work = n_layers * n_heads * n * n * dim
    if work > MAX_WORK:
        longest = int((MAX_WORK / (n_layers * n_heads * dim)) ** 0.5)
        raise ValueError(f"ALTI of {n} tokens on this model would take too long (it grows with the square of the "
                         f"length); it is computed for up to {longest} tokens: shorten the input.")


@torch.inference_mode()
def alti(model: AttentionModel, *, text: str | None = None, image=None, ids: list[int] | None = None,
         text_pair: str | None = None, progress: Progress | None = None) -> Alti:
    """ALTI of one input: each layer's token-to-token contributions and their roll-up across layers.

    Args:
        model: a loaded attnviz model of a supported family.
        text / ids: a text model's input (tokenized as :meth:`run` does), or its token ids.
        text_pair: an encoder's second text (a sentence pair, as :meth:`run` takes it).
        image: an image model's input (anything :func:`attnviz.load_image` reads).
        progress: called after each layer.
    Returns:
        :class:`Alti`.
    Raises:
        ValueError: unsupported family, missing input, or an input too long for the time it would take.
    """
    fam = family(model)
    if fam == "tinyvit":
        from attnviz.models.vision import patch_tokens

        if image is None:
            raise ValueError("No image given: upload a picture or choose an example.")
        pixels = model.inputs(image)[0]
        cfg = model.cfg
        _check_work(cfg.depth, cfg.heads, 1 + cfg.grid[0] * cfg.grid[1], cfg.dim)
        parts, tokens = tinyvit_parts(model.model, pixels), patch_tokens(model.grid)
        n_layers = cfg.depth
    else:
        inputs, tokens = _hf_inputs(model, fam, text, image, ids, text_pair)
        cfg = model.model.config
        n = len(tokens)
        _check_work(cfg.num_hidden_layers, cfg.num_attention_heads, n, cfg.hidden_size)
        out = model.model(**inputs, output_hidden_states=True, output_attentions=True)
        if not out.attentions or out.attentions[0] is None:
            raise ValueError(f"{model.name} returned no attention weights; ALTI needs eager attention.")
        parts = HF_FAMILIES[fam](model.model, out.hidden_states, out.attentions)
        n_layers = cfg.num_hidden_layers
    layers = []
    for i, p in enumerate(parts):
        layers.append(layer_contributions(p))
        if progress:
            progress(i + 1, n_layers)
    stacked = np.stack(layers)
    return Alti(stacked, alti_rollup(stacked), tokens)


def _hf_inputs(model, fam: str, text, image, ids, text_pair=None) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The transformers model's keyword inputs and the position labels."""
    if fam == "dinov2":
        from attnviz.images import as_rgb
        from attnviz.models.dinov2 import IMAGE_SIZE
        from attnviz.models.vision import IMAGENET_MEAN, IMAGENET_STD, patch_tokens, to_tensor

        if image is None:
            raise ValueError("No image given: upload a picture or choose an example.")
        x = to_tensor(as_rgb(image), IMAGE_SIZE, IMAGENET_MEAN, IMAGENET_STD)
        return {"pixel_values": x}, patch_tokens(model.grid)
    from attnviz.models.hf_text import token_labels

    if ids is None:
        enc, _, _ = model.encode(text, text_pair)
        enc = dict(enc)
    else:
        t = torch.tensor([list(map(int, ids))])
        enc = {"input_ids": t, "attention_mask": torch.ones_like(t)}
    return enc, token_labels(model.tokenizer, enc["input_ids"][0].tolist())
