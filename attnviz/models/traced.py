"""A model's forward traced once with TorchScript, so that one call runs the whole graph in C++.

Why: an eager forward calls a few hundred torch ops from Python and takes Python's GIL back after each one. In the
Streamlit server, other sessions' script threads (building figures, tables, messages) hold the GIL for up to the
switch interval (5 ms) each time, so under load a forward waits on the GIL far longer than it computes. Measured
with ``bench/forward_contention.py`` (median of 7): beside one busy Python thread, a 512-token MiniLM run took
0.96-0.98 s eager and 0.31-0.33 s traced, a DINOv2-S run 1.6-1.7 s eager and 0.21-0.23 s traced (beside two:
3.3 s vs 0.50 s, 7.2 s vs 0.44 s). Alone the two are within noise of each other (MiniLM ~0.17 s, DINOv2-S ~0.09 s).

The traced forward writes into buffers it is given (the capture of :mod:`attnviz.models.capture`) and returns
them. A trace records the path of one example input. :func:`trace_forward` checks the traced graph against the
eager forward on a second input (of another length, for text) and returns None (callers then run eager) when the
two differ or tracing fails. The traced module is never changed after it is built, so sessions may call it from
several threads at once.
"""
from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping, Sequence

import torch

log = logging.getLogger(__name__)

Forward = Callable[[torch.nn.Module, dict[str, torch.Tensor], tuple[torch.Tensor, ...]], tuple[torch.Tensor, ...]]
"""``forward(model, inputs, buffers)``: the eager forward of ``inputs``, writing into ``buffers``; returns tensors
(the buffers, or the model's attention)."""
Buffers = Callable[[Mapping[str, torch.Tensor]], tuple[torch.Tensor, ...]]
"""Makes new buffers for an input."""


class _Forward(torch.nn.Module):
    """``forward(model, inputs, buffers)`` with the inputs and buffers as positional tensors (tracing needs
    positional tensors in and a tuple of tensors out)."""

    def __init__(self, model: torch.nn.Module, names: Sequence[str], forward: Forward) -> None:
        super().__init__()
        self.model, self.names, self.fn = model, tuple(names), forward

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n = len(self.names)
        return tuple(self.fn(self.model, dict(zip(self.names, tensors[:n], strict=True)), tensors[n:]))


class TracedForward:
    """A traced :data:`Forward`: ``traced(inputs, buffers)`` returns what the eager forward returns."""

    def __init__(self, module: torch.jit.ScriptModule, names: Sequence[str]) -> None:
        self.module, self.names = module, tuple(names)

    def accepts(self, inputs: Mapping[str, torch.Tensor]) -> bool:
        """Whether ``inputs`` take the traced path: the same tensors by name and, where there is one, an attention
        mask of all ones (the trace was recorded without padding; padded inputs run eager)."""
        mask = inputs.get("attention_mask")
        return tuple(inputs) == self.names and (mask is None or bool(mask.all()))

    def __call__(self, inputs: Mapping[str, torch.Tensor], buffers: tuple[torch.Tensor, ...] = ()
                 ) -> tuple[torch.Tensor, ...]:
        with torch.inference_mode():
            return tuple(self.module(*(inputs[n] for n in self.names), *buffers))


def trace_forward(model: torch.nn.Module, forward: Forward, example: Mapping[str, torch.Tensor],
                  check: Mapping[str, torch.Tensor], name: str, buffers: Buffers = lambda _: ()
                  ) -> TracedForward | None:
    """Trace ``forward(model, inputs, buffers)`` on ``example``; None (with a logged warning) unless the trace gives
    exactly what the eager forward gives on ``check`` (another input; of another shape, e.g. length, where shapes
    vary). ``buffers`` makes the buffers of an input."""
    if tuple(example) != tuple(check):
        raise ValueError(f"example and check inputs differ: {tuple(example)} vs {tuple(check)}")
    wrapper = _Forward(model, tuple(example), forward).eval()
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings name the Python-side branches the check below covers
            module = torch.jit.trace(wrapper, (*example.values(), *buffers(example)), check_trace=False)
            traced = TracedForward(module, tuple(example))
            got = traced(check, buffers(check))
            want = wrapper(*check.values(), *buffers(check))
        same = len(got) == len(want) and all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
    except Exception:  # tracing is an optimisation: any failure means eager
        log.warning("%s: tracing its forward failed; it runs eager", name, exc_info=True)
        return None
    if not same:
        log.warning("%s: the traced forward differs from eager on a check input; it runs eager", name)
        return None
    log.info("%s: forward traced with TorchScript", name)
    return traced
