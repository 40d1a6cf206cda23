"""What a model reports beside its attention, typed (``AttentionResult.extras``).

Text models report nothing (``extras`` is None). Image models report :class:`ImageExtras`, encoder-decoders
:class:`Seq2SeqExtras`. A field a model cannot know is None (never a guess), so a page shows it or leaves it out.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageExtras:
    """What an image model adds to its attention.

    Attributes:
        input_size: side in pixels of the square picture the model sees (the whole picture is resized to it), or
            ``(height, width)`` when it is not square (a local model's image processor may say so).
        prediction: the predicted class name (classifiers); None for a backbone.
        probabilities: class name -> probability, in the model's class order (classifiers); None for a backbone.
        inverted: True when the picture was inverted first (a model trained on light objects on black).
    """

    input_size: int | tuple[int, int]
    prediction: str | None = None
    probabilities: dict[str, float] | None = None
    inverted: bool = False

    def __post_init__(self) -> None:
        if (self.prediction is None) != (self.probabilities is None):
            raise ValueError("an image model reports a prediction and its probabilities together, or neither")
        if self.prediction is not None and self.prediction not in self.probabilities:
            raise ValueError(f"the prediction {self.prediction!r} is not one of the classes")

    @property
    def input_hw(self) -> tuple[int, int]:
        """``(height, width)`` in pixels of the picture the model sees."""
        size = self.input_size
        return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


@dataclass(frozen=True)
class Seq2SeqExtras:
    """What an encoder-decoder adds to its attention.

    Attributes:
        output: the generated text (greedy decoding).
        input: the input as the model read it (normalised, cut to its limit).
        valid_date: date models: whether ``output`` is a real calendar date; None for other models.
        has_year: date models: whether the input holds a year (without one the output is a guess); None for others.
        output_cut: whether decoding stopped at the model's longest output before its end token (the last output
            position is then labelled as unfinished); None when the model does not say.
    """

    output: str
    input: str
    valid_date: bool | None = None
    has_year: bool | None = None
    output_cut: bool | None = None
