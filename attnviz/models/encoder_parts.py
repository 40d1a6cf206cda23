"""What attnviz's own encoder modules (:mod:`attnviz.models.bert`, :mod:`attnviz.models.dinov2_net`) share.

They are plain torch modules with transformers' names, attributes and eager arithmetic (the same parameter names,
``config``, ``set_attn_implementation``, an attention function chosen by name and called as transformers calls
it, outputs with ``last_hidden_state``, ``hidden_states`` and ``attentions``), so that the capture
(:mod:`attnviz.models.capture`), the trace, ALTI and the loaders read them as they read transformers' modules.
Why: importing transformers' model code costs a server ~100 MB of memory (it pulls in ``torch.distributed``,
``torch._dynamo``, accelerate and scipy) that the two default models do not need; the tests check their weights and
outputs against transformers' own modules.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

AttentionFunction = Callable[..., tuple[torch.Tensor, torch.Tensor | None]]
"""``fn(module, query, key, value, attention_mask, scaling=..., dropout=..., **kwargs) -> (output, weights)``, as
transformers' attention interface: query ``[batch, head, query, dim]``, output ``[batch, query, head, dim]``."""
FUNCTIONS: dict[str, AttentionFunction] = {}
"""Attention implementations by name besides ``"eager"`` (the capture registers its own here)."""
MIN = torch.finfo(torch.float32).min
"""What a masked score gets added (as transformers' eager masks)."""


def eager_attention_forward(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                            attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                            **_: object) -> tuple[torch.Tensor, torch.Tensor]:
    """Eager attention as transformers' BERT and DINOv2 compute it (inference: no dropout): output
    ``[batch, query, head, dim]`` and weights ``[batch, head, query, key]``."""
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = torch.nn.functional.softmax(weights, dim=-1)
    out = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return out, weights


def attend(module: torch.nn.Module, x: torch.Tensor, projections: tuple[torch.nn.Linear, ...], head_dim: int,
           mask: torch.Tensor | None, **kwargs: object) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``x [batch, position, width]`` through the query, key and value ``projections``, split into heads of
    ``head_dim``, attended by the implementation ``module.config`` names (eager unless set otherwise; ``kwargs``
    go to it) with ``module.scaling``, and the heads merged back: (``[batch, position, head * head_dim]``, weights)."""
    shape = (*x.shape[:-1], -1, head_dim)
    q, k, v = (p(x).view(shape).transpose(1, 2) for p in projections)
    fn = FUNCTIONS.get(module.config._attn_implementation, eager_attention_forward)
    out, weights = fn(module, q, k, v, mask, dropout=0.0, scaling=module.scaling, **kwargs)
    return out.reshape(*x.shape[:-1], -1).contiguous(), weights


class Config:
    """A model's ``config.json`` as attributes (over ``defaults``), and the attention implementation in use."""

    def __init__(self, values: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> None:
        self.__dict__.update({**(defaults or {}), **values})
        self._attn_implementation = "eager"

    def __repr__(self) -> str:
        return f"Config({self.model_type!r}, {self.num_hidden_layers} layers x {self.num_attention_heads} heads)"


@dataclass
class EncoderOutput:
    """What an encoder's forward returns: the last layer's output, and on request each layer's input and output
    (``hidden_states``: the embeddings, then every layer's output) and each layer's attention weights."""

    last_hidden_state: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor | None, ...] | None = None


class Encoder(torch.nn.Module):
    """An encoder with a :class:`Config`: its attention implementation is chosen by name, as in transformers."""

    config: Config

    def set_attn_implementation(self, name: str) -> None:
        """Use attention implementation ``name`` (``"eager"``, or one of :data:`FUNCTIONS`)."""
        if name != "eager" and name not in FUNCTIONS:
            raise ValueError(f"no attention implementation {name!r}")
        self.config._attn_implementation = name

    def run_layers(self, x: torch.Tensor, mask: torch.Tensor | None, output_attentions: bool,
                   output_hidden_states: bool, **kwargs: object) -> EncoderOutput:
        """``x`` through ``self.encoder.layer`` (each returns its output and its attention weights)."""
        hidden, attentions = [x], []
        for layer in self.encoder.layer:
            x, weights = layer(x, mask, **kwargs)
            hidden.append(x)
            attentions.append(weights)
        return EncoderOutput(x, tuple(hidden) if output_hidden_states else None,
                             tuple(attentions) if output_attentions else None)

    def load_weights(self, state: Mapping[str, torch.Tensor], ignored: tuple[str, ...] = ()) -> None:
        """Take ``state``'s tensors as the parameters (no copy: file-backed tensors stay so). Keys starting with one
        of ``ignored`` are left out.

        Raises:
            ValueError: a parameter missing from ``state``, an unexpected key or a shape that differs.
        """
        own = self.state_dict()
        state = {k: v for k, v in state.items() if not k.startswith(ignored)}
        bad = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or unexpected or bad:
            raise ValueError(f"the weights do not fit {type(self).__name__}: missing {missing[:3]}, unexpected "
                             f"{unexpected[:3]}, of another shape {bad[:3]}")
        self.load_state_dict({k: v.float() for k, v in state.items()}, strict=True, assign=True)


class _Loaded:
    """A layer made on the meta device and never initialised: its weights are loaded (:meth:`Encoder.load_weights`).

    Not ``with torch.device("meta")`` and torch's own initialisation: on meta tensors that goes through torch's
    reference implementations, which import ``torch._dynamo`` (~30 MB) once."""

    def reset_parameters(self) -> None:
        pass


class Linear(_Loaded, torch.nn.Linear):
    def __init__(self, n_in: int, n_out: int, bias: bool = True) -> None:
        super().__init__(n_in, n_out, bias=bias, device="meta")


class Embedding(_Loaded, torch.nn.Embedding):
    def __init__(self, n: int, dim: int, padding_idx: int | None = None) -> None:
        super().__init__(n, dim, padding_idx=padding_idx, device="meta")


class LayerNorm(_Loaded, torch.nn.LayerNorm):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__(dim, eps=eps, device="meta")


class Conv2d(_Loaded, torch.nn.Conv2d):
    def __init__(self, n_in: int, n_out: int, patch: int) -> None:
        super().__init__(n_in, n_out, kernel_size=patch, stride=patch, device="meta")


def parameter(*shape: int) -> torch.nn.Parameter:
    """A parameter still to be loaded (see :class:`_Loaded`)."""
    return torch.nn.Parameter(torch.empty(shape, device="meta"))


def padding_mask(attention_mask: torch.Tensor | None, n_query: int) -> torch.Tensor | None:
    """Eager's additive mask ``[batch, 1, query, key]`` (0 where a key may be attended, :data:`MIN` at padding) of a
    ``[batch, key]`` mask of ones and zeros; None for None."""
    if attention_mask is None:
        return None
    allowed = attention_mask.bool()[:, None, None, :]
    mask = torch.zeros(allowed.shape, dtype=torch.float32).masked_fill(~allowed, MIN)
    return mask.expand(-1, -1, n_query, -1)
