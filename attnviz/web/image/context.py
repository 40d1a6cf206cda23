"""What every view of the Image page gets (:class:`ImageContext`), and how maps are drawn over the picture
(:class:`Look`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from PIL import Image

from attnviz.result import AttentionResult
from attnviz.web.runs import ImageRun
from attnviz.web.widgets import Download


@dataclass(frozen=True)
class Look:
    """How the page draws a map over the picture (its colour controls)."""

    opacity: float
    colorscale: str
    smooth: bool
    ceiling: float  # percentile of each map given the top colour


@dataclass(frozen=True)
class ImageContext:
    """One Image page run as the views see it.

    Attributes:
        run: names the run (model and file); what download callables keep (``run.result()``).
        result: the run's result (local to this script run: never keep it).
        shown: the picture as the page shows it (longer side 640 px).
        query: the position whose attention is shown (0: [CLS]); ``who`` names it (``"[CLS]"``,
            ``"patch (3, 4)"``); ``chosen`` is that patch's ``(row, col)``, or None for [CLS].
        layer, head: the focused head, chosen above the views.
        look: colour scale, opacity, smoothing and colour ceiling of the maps.
        stem: the start of every file name (model, file digest and query).
        contributions: whether the focused head and per-layer maps show norm-based contributions (each weight
            times its key's value norm) instead of weights; file names of what they show then end in ``_contrib``.
    """

    run: ImageRun
    result: AttentionResult
    shown: Image.Image
    query: int
    who: str
    chosen: tuple[int, int] | None
    layer: int
    head: int
    look: Look
    stem: str
    contributions: bool = False

    @property
    def measure(self) -> str:
        """``"weight"`` or ``"contribution"``: what the maps hold."""
        return "contribution" if self.contributions else "weight"

    @property
    def suffix(self) -> str:
        """End of the file names of what the views show: ``"_contrib"`` for contributions, else ``""``."""
        return "_contrib" if self.contributions else ""


class ImageView(Protocol):
    """A section of the Image page: a module with a label and a ``show`` (see :mod:`attnviz.web.image`)."""

    LABEL: str

    def show(self, ctx: ImageContext) -> list[Download]: ...
