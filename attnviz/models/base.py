"""The interface every attention model of attnviz offers."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from attnviz.result import AttentionResult


class AttentionModel(ABC):
    """A loaded model that returns its attention for one input.

    Subclasses set ``name``, ``kind`` (``"text"``, ``"image"`` or ``"seq2seq"``), ``n_layers``,
    ``n_heads`` and ``description``. ``run`` must be safe to call from several threads at once:
    nothing in it may mutate the shared model.
    """

    name: str
    kind: str
    n_layers: int
    n_heads: int
    description: str = ""
    causal: bool = False

    @abstractmethod
    def run(self, **inputs: Any) -> AttentionResult:
        """Run the model on one input and return its attention."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.kind} {self.n_layers}x{self.n_heads}>"
