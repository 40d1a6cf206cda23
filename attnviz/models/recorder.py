"""Capture attention weights from named softmax modules with forward hooks, safely across threads.

The hooks are registered once, when a model is loaded, and write into thread-local storage, so
concurrent ``run`` calls on one shared model never see each other's weights and never add or remove
hooks while another thread runs (vit-pytorch's recorder idea, made thread-safe).
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


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
