"""The attention result and the one shape convention of attnviz.

Glossary, used with exactly these words everywhere in the project:

- ``layer``: index of a transformer block, 0-based.
- ``head``: index of an attention head inside a layer, 0-based.
- ``query``: the position that attends (a row).
- ``key``: the position attended to (a column).

``weights[layer, head, query, key]`` is float32 and every row (over ``key``) sums to 1.
There is no batch dimension once attention has been extracted: a result describes one input.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from attnviz.extras import ImageExtras, Seq2SeqExtras

KINDS = ("text", "image", "seq2seq")


@dataclass
class AttentionResult:
    """Attention of one model on one input.

    Attributes:
        weights: float32 ``[layer, head, query, key]``; rows sum to 1.
        tokens: one label per query position.
        model: name of the model that produced it.
        kind: ``"text"``, ``"image"`` or ``"seq2seq"``.
        key_tokens: labels of the key positions when they differ from ``tokens`` (cross-attention);
            ``None`` for self-attention.
        special: bool ``[query]``, True for special tokens ([CLS], [SEP], [PAD], ...).
        segments: int ``[query]`` segment of each token (0 = text A, 1 = text B); ``None`` without a pair.
        causal: True when a query attends only to itself and earlier keys (decoder models).
        truncated: True when the input was cut to the model's limit.
        n_input_chars: characters of input text that were considered (text models).
        grid: image models: ``(rows, cols)`` of the patch grid; ``tokens[0]`` is the CLS token.
        parts: further attention of the same run, by name (e.g. ``"cross"`` of an encoder-decoder).
        extras: what the model reports beside attention (:mod:`attnviz.extras`): image models
            :class:`ImageExtras` (input size, prediction...), encoder-decoders :class:`Seq2SeqExtras`; else None.
    """

    weights: np.ndarray
    tokens: list[str]
    model: str
    kind: str
    key_tokens: list[str] | None = None
    special: np.ndarray | None = None
    segments: np.ndarray | None = None
    causal: bool = False
    truncated: bool = False
    n_input_chars: int | None = None
    grid: tuple[int, int] | None = None
    parts: dict[str, AttentionResult] = field(default_factory=dict)
    extras: ImageExtras | Seq2SeqExtras | None = None

    def __post_init__(self) -> None:
        w = np.asarray(self.weights, dtype=np.float32)
        if w.ndim != 4:
            raise ValueError(f"weights must be [layer, head, query, key], got shape {w.shape}")
        if w.shape[2] != len(self.tokens):
            raise ValueError(f"{len(self.tokens)} tokens for {w.shape[2]} query positions")
        keys = self.key_tokens if self.key_tokens is not None else self.tokens
        if w.shape[3] != len(keys):
            raise ValueError(f"{len(keys)} key tokens for {w.shape[3]} key positions")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        self.weights = w
        if self.special is None:
            self.special = np.zeros(len(self.tokens), dtype=bool)

    @property
    def n_layers(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_heads(self) -> int:
        return int(self.weights.shape[1])

    @property
    def n_tokens(self) -> int:
        return int(self.weights.shape[2])

    @property
    def keys(self) -> list[str]:
        """Labels of the key positions (the tokens themselves for self-attention)."""
        return self.key_tokens if self.key_tokens is not None else self.tokens

    def head(self, layer: int, head: int) -> np.ndarray:
        """One head's attention, ``[query, key]``."""
        self._check(layer, head)
        return self.weights[layer, head]

    def layer(self, layer: int) -> np.ndarray:
        """All heads of one layer, ``[head, query, key]``."""
        self._check(layer, 0)
        return self.weights[layer]

    def _check(self, layer: int, head: int) -> None:
        """``TypeError`` unless both are integers (numpy integers too, not bool); ``ValueError`` out of range."""
        for name, index, n in (("layer", layer, self.n_layers), ("head", head, self.n_heads)):
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
                raise TypeError(f"{name} must be an integer, got {index!r}")
            if not 0 <= index < n:
                raise ValueError(f"{name} must be in 0..{n - 1}, got {index}")
