"""Record what attnviz's own models compute their attention from, with forward hooks, safely across threads.

:class:`AttentionRecorder` keeps the outputs of named modules (the post-softmax weights of ``nn.Softmax`` modules);
:class:`PartsRecorder` keeps, per attention call, the queries, keys, values and mask passed through a named
:class:`AttentionParts` module, from which every head is recomputed (:class:`attnviz.models.heads.CapturedHeads`).
The hooks are registered once, when a model is loaded, and write into thread-local storage, so concurrent ``run``
calls on one shared model never see each other's records and never add or remove hooks while another thread runs
(vit-pytorch's recorder idea, made thread-safe).
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from attnviz.models.capture import gram, mask_intervals, value_norms
from attnviz.models.heads import CapturedHeads


class AttentionRecorder:
    """Records the output of every module of type ``softmax_type`` inside ``model``, in call order."""

    def __init__(self, model: nn.Module, softmax_type: type[nn.Module] = nn.Softmax) -> None:
        self._local = threading.local()
        self._handles = []
        for _, module in model.named_modules():
            if isinstance(module, softmax_type):
                self._handles.append(module.register_forward_hook(self._hook))
        if not self._handles:
            raise ValueError(
                f"No {softmax_type.__name__} module found in {type(model).__name__}: "
                "the model must compute attention through a named softmax module to be recorded."
            )

    def _hook(self, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        store = getattr(self._local, "store", None)
        if store is not None:
            store.append(output if self._local.keep_graph else output.detach())

    @contextmanager
    def record(self, keep_graph: bool = False) -> Iterator[list[torch.Tensor]]:
        """Within the block, outputs of the softmax modules (this thread only) are appended to the list; with
        ``keep_graph`` they stay in the autograd graph (for gradients with respect to the attention weights)."""
        store: list[torch.Tensor] = []
        self._local.store, self._local.keep_graph = store, keep_graph
        try:
            yield store
        finally:
            self._local.store = None

    def eject(self) -> None:
        """Remove the hooks."""
        for h in self._handles:
            h.remove()
        self._handles.clear()


class AttentionParts(nn.Module):
    """Identity on ``(q, k, v, allowed)``: what a softmax attention's weights are made of, passed through a named
    module so that a :class:`PartsRecorder` can keep it. Its owner (the attention module holding it as ``parts``)
    offers ``n_heads``, ``scale`` (of the scores) and ``out_proj`` (its output projection)."""

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        return q, k, v, allowed


Parts = tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor, "torch.Tensor | None"]
"""(owner attention module, q ``[batch, head, query, dim]``, k and v ``[batch, head, key, dim]``, allowed: bool
broadcastable to ``[batch, head, query, key]`` or None)."""


class PartsRecorder(AttentionRecorder):
    """Records, per attention call, its :data:`Parts` (thread-safe, hooks registered once like
    :class:`AttentionRecorder`)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model, AttentionParts)
        self.owners = {id(m.parts): m for m in model.modules() if isinstance(getattr(m, "parts", None), AttentionParts)}
        self.grams = {i: gram(m.out_proj.weight, m.n_heads) for i, m in self.owners.items()}

    def _hook(self, module: nn.Module, args: tuple, output: tuple) -> None:
        store = getattr(self._local, "store", None)
        if store is not None:
            store.append((module, *(None if t is None else t.detach() for t in output)))

    def heads(self, calls: list[Parts], item: int = 0) -> CapturedHeads:
        """The recorded calls (one per layer, same shapes) of batch item ``item`` as a head source."""
        q = torch.stack([c[1][item] for c in calls])  # [layer, head, query, dim]
        k = torch.stack([c[2][item] for c in calls])  # [layer, head, key, dim]
        n_query, n_key = q.shape[2], k.shape[2]
        lo, hi = [], []
        for c in calls:
            allowed = c[4]
            if allowed is not None:
                while allowed.dim() < 4:
                    allowed = allowed[None]
                allowed = allowed[item if allowed.shape[0] > 1 else 0][None]
            a, b, ok = mask_intervals(allowed, 1, n_query, n_key)
            if not bool(ok):
                raise RuntimeError("a recorded mask is not one interval of keys per query")
            lo.append(a[0])
            hi.append(b[0])
        norms = torch.stack([value_norms(c[3][item:item + 1], self.grams[id(c[0])])[0] for c in calls])
        owners = [self.owners[id(c[0])] for c in calls]
        return CapturedHeads(q.numpy(), k.numpy(), [float(o.scale) for o in owners],
                             torch.stack(lo).to(torch.int32).numpy(), torch.stack(hi).to(torch.int32).numpy(),
                             norms=norms.numpy())
