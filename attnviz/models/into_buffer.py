"""Attention weights written into one ``[layer, batch, head, query, key]`` tensor as each layer computes them.

Why: with ``output_attentions=True`` transformers keeps every layer's weights until the forward ends, and stacking
them into one array then copies them all: two copies of the whole result at once (2 x 75 MB for a 512-token MiniLM
run, whose first copy stays in the server's heap until the burst of runs ends, see :mod:`attnviz.server.allocator`).
Here each layer's weights are copied into their slot of a buffer allocated once per run, and the layer's own tensor is
freed at once: the buffer is the result, and a run holds one layer's weights beyond it.

How: :func:`prepare` switches a model to an attention implementation registered with transformers
(``AttentionInterface``, with eager attention's masks) that calls the model family's own
``eager_attention_forward`` (the numbers are exactly the eager ones), then copies the weights into
``buffer[layer]`` and returns that slot. The buffer travels as the keyword :data:`KWARG`, which transformers passes
down to every attention call, so concurrent runs each write their own. The attention modules are numbered once, at
load time, in the order a forward calls them; nothing about the model changes after that.

Measured with ``bench/heap_reuse.py`` (512-token MiniLM runs, median of 7, before -> after): two runs at once
raised the resident memory by at most 310-342 -> 224-232 MB (their two 72 MB results included), one run 190 -> 140
MB; minor page faults per run 49,000-58,000 -> 32,000-38,000; a burst of two 0.22 -> 0.19-0.20 s.
"""
from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping

import torch

log = logging.getLogger(__name__)

KWARG = "attnviz_weights"
"""Keyword that carries the ``[layer, batch, head, query, key]`` buffer through a forward."""
IMPLEMENTATION = "attnviz_eager"
_PROBE = "attnviz_probe"
_LAYER = "attnviz_layer"


def _eager(module: torch.nn.Module) -> Callable:
    return sys.modules[type(module).__module__].eager_attention_forward


def attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
              attention_mask: torch.Tensor | None, **kwargs: object) -> tuple[torch.Tensor, torch.Tensor]:
    """The family's eager attention; its weights copied into ``kwargs[KWARG][layer]`` when a buffer is given."""
    buffer, probe = kwargs.pop(KWARG, None), kwargs.pop(_PROBE, None)
    out, weights = _eager(module)(module, query, key, value, attention_mask, **kwargs)
    if probe is not None:
        probe.append(module)
    if buffer is None:
        return out, weights
    slot = buffer[getattr(module, _LAYER)]
    slot.copy_(weights)
    return out, slot


def prepare(model: torch.nn.Module, example: Mapping[str, torch.Tensor], name: str) -> int:
    """Route ``model``'s attention through :func:`attention` and number its attention modules (once, before the
    model is shared). The number of attention layers (the buffer's first dimension), or 0 when that does not work:
    the model then keeps the attention it had."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(IMPLEMENTATION, attention)
    AttentionMaskInterface.register(IMPLEMENTATION, eager_mask)  # the masks eager attention gets (causal, padding)
    before = model.config._attn_implementation
    try:
        model.set_attn_implementation(IMPLEMENTATION)
        calls: list[torch.nn.Module] = []
        with torch.inference_mode():
            model(**example, output_attentions=True, **{_PROBE: calls})
        if not calls or len(set(map(id, calls))) != len(calls):
            raise ValueError(f"{len(calls)} attention calls, not one per distinct module")
    except Exception:  # an architecture without the attention interface: as it was, its weights stacked
        log.warning("%s: attention weights cannot be written into one buffer; they are stacked", name,
                    exc_info=True)
        model.set_attn_implementation(before)
        return 0
    for layer, module in enumerate(calls):
        setattr(module, _LAYER, layer)
    return len(calls)


def new_buffer(n_layers: int, shape: tuple[int, int, int, int]) -> torch.Tensor:
    """An uninitialised ``[layer, batch, head, query, key]`` float32 buffer (every slot is written by the forward)."""
    return torch.empty((n_layers, *shape), dtype=torch.float32)
