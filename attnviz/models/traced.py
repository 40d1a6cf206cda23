"""A model's attention forward traced once with TorchScript, so that one call runs the whole graph in C++.

Why: an eager forward calls a few hundred torch ops from Python and takes Python's GIL back after each one. In the
Streamlit server, other sessions' script threads (building figures, tables, messages) hold the GIL for up to the
switch interval (5 ms) each time, so under load a forward waits on the GIL far longer than it computes. Measured
with ``bench/forward_contention.py`` (median of 7): beside one busy Python thread, a 512-token MiniLM run took
0.96-0.98 s eager and 0.31-0.33 s traced, a DINOv2-S run 1.6-1.7 s eager and 0.21-0.23 s traced (beside two:
3.3 s vs 0.50 s, 7.2 s vs 0.44 s). Alone the two are within noise of each other (MiniLM ~0.17 s, DINOv2-S ~0.09 s).

A trace records the path of one example input. :func:`trace_attentions` checks the traced graph against the eager
module on a second input (of another length, for text) and returns None (callers then run eager) when the two
differ or tracing fails. The traced module is never changed after it is built, so sessions may call it from several
threads at once.
"""
from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping, Sequence

import torch

from attnviz.models import into_buffer

log = logging.getLogger(__name__)


class _Attentions(torch.nn.Module):
    """``model(**inputs, output_attentions=True).attentions`` with the inputs as positional tensors (tracing
    needs positional tensors and a tuple of tensors out); with ``buffered``, the last tensor is the
    ``[layer, batch, head, query, key]`` buffer the weights are written into (:mod:`attnviz.models.into_buffer`)."""

    def __init__(self, model: torch.nn.Module, names: Sequence[str], buffered: bool = False) -> None:
        super().__init__()
        self.model, self.names, self.buffered = model, tuple(names), buffered

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        extra = {into_buffer.KWARG: tensors[-1]} if self.buffered else {}
        inputs = tensors[:-1] if self.buffered else tensors
        out = self.model(**dict(zip(self.names, inputs, strict=True)), output_attentions=True, **extra)
        return tuple(out.attentions)


Buffer = Callable[[Mapping[str, torch.Tensor]], torch.Tensor]
"""Makes the ``[layer, batch, head, query, key]`` buffer of an input (:func:`attnviz.models.into_buffer.new_buffer`)."""


class TracedAttentions:
    """The per-layer attention tensors (``[batch, head, query, key]`` each) of a traced forward; with a buffer, views
    of its slots."""

    def __init__(self, module: torch.jit.ScriptModule, names: Sequence[str], buffered: bool = False) -> None:
        self.module, self.names, self.buffered = module, tuple(names), buffered

    def accepts(self, inputs: Mapping[str, torch.Tensor]) -> bool:
        """Whether ``inputs`` take the traced path: the same tensors by name and, where there is one, an attention
        mask of all ones (the trace was recorded without padding; padded inputs run eager)."""
        mask = inputs.get("attention_mask")
        return tuple(inputs) == self.names and (mask is None or bool(mask.all()))

    def __call__(self, inputs: Mapping[str, torch.Tensor],
                 buffer: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """The attention of ``inputs``, written into ``buffer`` (required when traced with one)."""
        if self.buffered != (buffer is not None):
            raise ValueError("a buffered trace needs a buffer, an unbuffered one takes none")
        with torch.inference_mode():
            return tuple(self.module(*(inputs[n] for n in self.names), *(() if buffer is None else (buffer,))))


def trace_attentions(model: torch.nn.Module, example: Mapping[str, torch.Tensor],
                     check: Mapping[str, torch.Tensor], name: str,
                     buffer: Buffer | None = None) -> TracedAttentions | None:
    """Trace ``model``'s attention forward on ``example``; None (with a logged warning) unless the trace gives
    exactly the eager attention on ``check`` (another input; of another shape, e.g. length, where shapes vary).
    ``buffer``: the model writes its weights into a buffer (:func:`attnviz.models.into_buffer.prepare`), which this
    makes for an input."""
    if tuple(example) != tuple(check):
        raise ValueError(f"example and check inputs differ: {tuple(example)} vs {tuple(check)}")
    wrapper = _Attentions(model, tuple(example), buffered=buffer is not None).eval()

    def args(inputs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return (*inputs.values(), *(() if buffer is None else (buffer(inputs),)))

    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings name the Python-side branches the check below covers
            module = torch.jit.trace(wrapper, args(example), check_trace=False)
            traced = TracedAttentions(module, tuple(example), buffered=buffer is not None)
            got = traced(check, None if buffer is None else buffer(check))
            want = wrapper(*args(check))
        same = len(got) == len(want) and all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
    except Exception:  # tracing is an optimisation: any failure means eager
        log.warning("%s: tracing its forward failed; it runs eager", name, exc_info=True)
        return None
    if not same:
        log.warning("%s: the traced forward differs from eager on a check input; it runs eager", name)
        return None
    log.info("%s: forward traced with TorchScript", name)
    return traced
