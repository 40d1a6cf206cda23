"""Reading a transformers model's attention as head sources: the forward, eager or traced, with the capture of
:mod:`attnviz.models.capture`.

Shapes: ``batch`` inputs of ``n`` positions (padded to the longest); each input's own positions are the span
``start..stop-1`` of its row.
"""
from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping

import torch

from attnviz.models import capture
from attnviz.models.capture import FULL_MAX_KEYS, KWARG, STORED_MAX_BYTES, Plan, Run
from attnviz.models.threads import run_threads
from attnviz.models.traced import TracedForward, trace_forward
from attnviz.result import HeadSource, StoredWeights

log = logging.getLogger(__name__)


class AttentionReader:
    """The attention of a transformers model (prepared once, at load: :func:`attnviz.models.capture.prepare`).

    Runs the model's base (``model.base_model``: no language-model head, whose logits over the vocabulary would
    cost more than the attention at long inputs) without a key/value cache. Safe from several threads at once: a
    call fills its own buffers and changes nothing shared.
    """

    def __init__(self, model: torch.nn.Module, example: Mapping[str, torch.Tensor], name: str,
                 positions: Callable[[Mapping[str, torch.Tensor]], int] | None = None) -> None:
        self.name = name
        self.positions = positions or (lambda inputs: next(iter(inputs.values())).shape[1])
        """Positions the attention of an input has (the length of its ids by default; for images, patches + 1)."""
        self.base: torch.nn.Module = getattr(model, "base_model", model)
        accepted = inspect.signature(self.base.forward).parameters
        self.kwargs = {"use_cache": False} if "use_cache" in accepted else {}
        self.plan: Plan = capture.prepare(self.base, example, name)
        if self.plan.mode == "stack":  # for the size bound
            cfg = getattr(model, "config", None)
            self.plan.n_layers = int(getattr(cfg, "num_hidden_layers", 1))
            self.plan.n_heads = int(getattr(cfg, "num_attention_heads", 1))
        self.traced: TracedForward | None = None

    @property
    def captures(self) -> bool:
        """True when heads are recomputed from a capture, False when the weights are stored."""
        return self.plan.mode == "capture"

    def trace(self, example: Mapping[str, torch.Tensor], check: Mapping[str, torch.Tensor]) -> None:
        """Run through a TorchScript trace from now on (:mod:`attnviz.models.traced`) where it reproduces the
        eager forward exactly on ``check``; inputs longer than :data:`FULL_MAX_KEYS` always run eager."""
        if self.plan.mode == "stack":
            return
        plan, kwargs = self.plan, self.kwargs

        def forward(model: torch.nn.Module, inputs: dict, buffers: tuple) -> tuple[torch.Tensor, ...]:
            run = Run(plan, buffers)
            model(**inputs, **kwargs, **{KWARG: run})
            return run.tensors()

        self.traced = trace_forward(self.base, forward, example, check, self.name,
                                    buffers=lambda inputs: self._new_run(inputs).tensors())

    def _new_run(self, inputs: Mapping[str, torch.Tensor], n: int | None = None) -> Run:
        first = next(iter(inputs.values()))
        n = n or self.positions(inputs)
        return Run.new(self.plan, first.shape[0], n, n)

    def __call__(self, inputs: Mapping[str, torch.Tensor], n: int, spans: list[tuple[int, int]] | None = None,
                 traced: bool = True, progress: Callable[[int, int], None] | None = None,
                 overview: int | None = None, means: bool = False) -> list[HeadSource]:
        """One head source per input of the batch.

        Args:
            inputs: the model's inputs (batch first).
            n: positions of the padded batch.
            spans: each input's positions ``(start, stop)``; all ``n`` by default.
            traced: take the traced forward when it accepts the inputs.
            progress: called with ``(layers done, layers)`` after each layer of an eager forward (a traced one,
                up to 512 positions and well under a second, calls nothing); it may raise to stop the run.
            overview: make the overview at this size during an eager captured forward of one input (the grid's
                thumbnails then cost no second pass over every head; a traced forward's is made on demand).
            means: keep each layer's heads averaged, as an eager captured forward of one input computes them
                (:meth:`attnviz.result.AttentionResult.kept_mean`: rollout then recomputes no head; a traced
                forward keeps none).
        Raises:
            ValueError: a model that stores its weights, over :data:`STORED_MAX_BYTES`; a model that returns no
                attention weights.
        """
        batch = next(iter(inputs.values())).shape[0]
        spans = spans or [(0, n)] * batch
        if self.plan.mode == "stack":
            self._check_stored_size(batch, n)
            return self._stacked(inputs, spans)
        return capture.sources(self.forward(inputs, n, traced, progress, overview, means), spans)

    def forward(self, inputs: Mapping[str, torch.Tensor], n: int, traced: bool = True,
                progress: Callable[[int, int], None] | None = None, overview: int | None = None,
                means: bool = False) -> Run:
        """The forward itself: the :class:`Run` whose ``[layer, batch, ...]`` buffers hold the whole batch's
        capture (or stored weights), for a caller that reads the batch at once (corpus statistics) rather than one
        head source per input. Arguments as :meth:`__call__`; a model whose plan is ``"stack"`` has no run
        (``ValueError``)."""
        if self.plan.mode == "stack":
            raise ValueError(f"{self.name} returns its attention stacked: it has no run of buffers")
        batch = next(iter(inputs.values())).shape[0]
        if self.plan.mode != "capture":
            self._check_stored_size(batch, n)
        run = self._new_run(inputs, n)
        run.progress = progress
        short = traced and self.traced is not None and n <= FULL_MAX_KEYS and self.traced.accepts(inputs)
        with torch.inference_mode(), run_threads(short):
            if short:
                run = Run(self.plan, self.traced(inputs, run.tensors()))
            else:
                if overview and batch == 1 and self.plan.mode == "capture":
                    run.want_overview(int(overview), n, n)
                if means and batch == 1 and self.plan.mode == "capture":
                    run.want_means(n, n)
                self.base(**inputs, **self.kwargs, **{KWARG: run})
        return run

    def _check_stored_size(self, batch: int, n: int) -> None:
        layers, heads = self.plan.n_layers, self.plan.n_heads
        size = 4 * layers * batch * heads * n * n
        if size > STORED_MAX_BYTES:
            most = int((STORED_MAX_BYTES / (4 * layers * batch * heads)) ** 0.5)
            raise ValueError(f"{self.name} keeps every attention weight (its attention cannot be recomputed "
                             f"exactly from its parts): {n} positions would take {size / 2**30:.1f} GiB, over the "
                             f"{STORED_MAX_BYTES / 2**30:.0f} GiB bound. Use an input of at most {most} positions.")

    def _stacked(self, inputs: Mapping[str, torch.Tensor], spans: list[tuple[int, int]]) -> list[HeadSource]:
        with torch.inference_mode():
            out = self.base(**inputs, **self.kwargs, output_attentions=True)
        if not getattr(out, "attentions", None) or out.attentions[0] is None:
            raise ValueError(f"Model {self.name!r} returned no attention weights; it must support "
                             "attn_implementation='eager' and output_attentions=True.")
        weights = torch.stack(out.attentions).float()  # [layer, batch, head, query, key]
        return [StoredWeights(weights[:, i, :, a:b, a:b].numpy() if len(spans) == 1
                              else weights[:, i, :, a:b, a:b].contiguous().numpy())
                for i, (a, b) in enumerate(spans)]


class ReadsAttention:
    """A model whose attention an :class:`AttentionReader` (``self.reader``) reads: its traced forward, if any."""

    reader: AttentionReader

    @property
    def traced(self) -> TracedForward | None:
        """The traced forward (None: eager; set None to run eager), see :meth:`AttentionReader.trace`."""
        return self.reader.traced

    @traced.setter
    def traced(self, value: TracedForward | None) -> None:
        self.reader.traced = value
