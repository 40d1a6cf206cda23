"""The attention result and the one shape convention of attnviz.

Glossary, used with exactly these words everywhere in the project:

- ``layer``: index of a transformer block, 0-based.
- ``head``: index of an attention head inside a layer, 0-based.
- ``query``: the position that attends (a row).
- ``key``: the position attended to (a column).

``weights[layer, head, query, key]`` is float32 and every row (over ``key``) sums to 1.
There is no batch dimension once attention has been extracted: a result describes one input.

A result does not hold every weight: it holds a :class:`HeadSource`, which computes a head's ``[query, key]``
weights when a view asks for them. Models whose attention can be recomputed exactly keep what the weights are made
of (queries, keys, scale, mask: :mod:`attnviz.models.heads`), about ``head_dim / key`` of the full tensor; the others
keep the weights themselves (:class:`StoredWeights`). Either way ``head``, ``row`` and ``overview`` give the model's
own numbers, and ``weights`` builds the full tensor only while it stays under :data:`WEIGHTS_MAX_BYTES`.
This module imports no torch: analysis and render use it.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from attnviz.extras import ImageExtras, Seq2SeqExtras

KINDS = ("text", "image", "seq2seq")

WEIGHTS_MAX_BYTES = 1 << 30
"""Largest full ``[layer, head, query, key]`` tensor :attr:`AttentionResult.weights` builds (1 GiB): SmolLM2-135M
at 940 tokens, MiniLM at any length it reads (75 MB at 512). Longer inputs are read head by head."""
LAYER_MAX_BYTES = 1 << 28
"""Largest ``[head, query, key]`` tensor :meth:`AttentionResult.layer` builds (256 MiB: 9 heads at 2,730 tokens)."""


def block_starts(n: int, size: int) -> np.ndarray:
    """First index of each of the ``min(n, size)`` blocks an overview splits ``n`` positions into: block ``i`` is
    ``[floor(i n / size), floor((i + 1) n / size))`` (all blocks 1 long when ``n <= size``)."""
    if size < 1:
        raise ValueError(f"overview size must be at least 1, got {size}")
    return np.arange(n) if n <= size else np.linspace(0, n, size, endpoint=False).astype(np.int64)


def block_max(matrix: np.ndarray, size: int) -> np.ndarray:
    """Block maxima of the last two axes (``[..., query, key]`` -> ``[..., s, s']``, see :func:`block_starts`),
    numpy. Each axis is the running maximum of a few whole-array takes (offset ``k`` of every block, the block's
    last cell repeated where it is short): 18 ms for ``[6, 12, 512, 512]`` -> 96, ``np.maximum.reduceat`` 75 ms."""
    out = np.asarray(matrix)
    for axis in (-2, -1):  # queries first: the keys pass then works on a fraction of the data
        n = out.shape[axis]
        if n > size:
            starts = block_starts(n, size)
            last = np.append(starts[1:], n) - 1
            offsets = np.arange(int((last - starts).max()) + 1)
            cells = np.minimum(starts[:, None] + offsets, last[:, None])  # [block, offset]
            pooled = np.take(out, cells[:, 0], axis=axis)
            for k in offsets[1:]:
                np.maximum(pooled, np.take(out, cells[:, k], axis=axis), out=pooled)
            out = pooled
    return out


NO_NORMS = ("{model} does not report value norms, so contributions are not available: its attention's output "
            "projection was not found.")
"""What asking for contributions of a result without value norms raises (``{model}``: the model's name)."""


def contributions_of(weights: np.ndarray, norms: np.ndarray | None, keys: np.ndarray | None = None) -> np.ndarray:
    """Norm-based contributions (:meth:`AttentionResult.contribution`) of weights ``[layer, head, query, key']``:
    each weight times its key's value norm, ``norms [layer, head, key]`` taken at the key positions ``keys`` (all
    by default). float32, a new array.

    Raises:
        ValueError: ``norms`` is None (the model's value norms were not captured).
    """
    if norms is None:
        raise ValueError(NO_NORMS.format(model="This model"))
    n = norms if keys is None else norms[..., keys]
    return np.multiply(weights, n[:, :, None, :], dtype=np.float32)


@runtime_checkable
class HeadSource(Protocol):
    """What a result's weights come from. Implementations must be picklable and read-only after creation.

    ``shape`` is ``(layer, head, query, key)``; ``nbytes`` the bytes held.
    """

    shape: tuple[int, int, int, int]

    @property
    def nbytes(self) -> int: ...

    def rows(self, layer: int, head: int, start: int, stop: int) -> np.ndarray:
        """float32 ``[stop - start, key]``: rows ``start..stop-1`` of one head."""

    def layer_rows(self, layer: int, start: int, stop: int) -> np.ndarray:
        """float32 ``[head, stop - start, key]``: rows ``start..stop-1`` of every head of one layer."""

    def overview(self, size: int, keep: np.ndarray | None = None, contributions: bool = False) -> np.ndarray:
        """float32 ``[layer, head, s, s']``: block maxima of every head (:func:`block_max`); with ``keep`` (bool
        ``[query]``), of the heads over those positions only, each row renormalised over them; with
        ``contributions``, of each weight (after that renormalisation) times its key's value norm
        (:func:`contributions_of`; ``ValueError`` without norms)."""

    def value_norms(self) -> np.ndarray | None:
        """float32 ``[layer, head, key]``: ``‖(x_j W_V^h + b_V^h) W_O^h‖``, or None when not captured."""


class StoredWeights:
    """A source that holds the weights themselves (models whose attention is not recomputed, and hand-made
    results).

    Args:
        weights: float32 ``[layer, head, query, key]``.
        norms: optional float32 ``[layer, head, key]`` value norms (see :meth:`HeadSource.value_norms`).
    """

    def __init__(self, weights: np.ndarray, norms: np.ndarray | None = None) -> None:
        w = np.asarray(weights, dtype=np.float32)
        if w.ndim != 4:
            raise ValueError(f"weights must be [layer, head, query, key], got shape {w.shape}")
        self.weights = w
        self.shape = tuple(int(s) for s in w.shape)
        self.norms = None if norms is None else np.asarray(norms, dtype=np.float32)

    @property
    def nbytes(self) -> int:
        return int(self.weights.nbytes + (0 if self.norms is None else self.norms.nbytes))

    def rows(self, layer: int, head: int, start: int, stop: int) -> np.ndarray:
        return self.weights[layer, head, start:stop]

    def layer_rows(self, layer: int, start: int, stop: int) -> np.ndarray:
        return self.weights[layer, :, start:stop]

    def overview(self, size: int, keep: np.ndarray | None = None, contributions: bool = False) -> np.ndarray:
        w = self.weights
        index = None if keep is None else np.flatnonzero(keep)
        if index is not None:
            w = w[:, :, index][..., index]
            sums = w.sum(-1, keepdims=True)
            w = np.divide(w, sums, out=np.zeros_like(w), where=sums > 0)
        if contributions:
            w = contributions_of(w, self.norms, index)
        return np.ascontiguousarray(block_max(w, size))

    def value_norms(self) -> np.ndarray | None:
        return self.norms


class AttentionResult:
    """Attention of one model on one input.

    Args:
        source: what the weights come from (a :class:`HeadSource`), or the float32 ``[layer, head, query, key]``
            weights themselves (also accepted as the keyword ``weights``).
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

    def __init__(self, source: HeadSource | np.ndarray | None = None, tokens: list[str] | None = None,
                 model: str = "", kind: str = "text",
                 key_tokens: list[str] | None = None, special: np.ndarray | None = None,
                 segments: np.ndarray | None = None, causal: bool = False, truncated: bool = False,
                 n_input_chars: int | None = None, grid: tuple[int, int] | None = None,
                 parts: dict[str, AttentionResult] | None = None,
                 extras: ImageExtras | Seq2SeqExtras | None = None, *, weights: np.ndarray | None = None) -> None:
        if (source is None) == (weights is None):
            raise ValueError("give a result either a source or its weights (float32 [layer, head, query, key])")
        if tokens is None:
            raise ValueError("a result needs one token label per query position")
        source = weights if source is None else source
        self.source = source if isinstance(source, HeadSource) else StoredWeights(source)
        n_layers, n_heads, n_query, n_key = self.source.shape
        if n_query != len(tokens):
            raise ValueError(f"{len(tokens)} tokens for {n_query} query positions")
        keys = key_tokens if key_tokens is not None else tokens
        if n_key != len(keys):
            raise ValueError(f"{len(keys)} key tokens for {n_key} key positions")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.tokens, self.model, self.kind, self.key_tokens = list(tokens), model, kind, key_tokens
        self.special = np.zeros(len(tokens), dtype=bool) if special is None else special
        self.segments, self.causal, self.truncated = segments, causal, truncated
        self.n_input_chars, self.grid = n_input_chars, grid
        self.parts: dict[str, AttentionResult] = dict(parts or {})
        self.extras = extras

    def __repr__(self) -> str:
        return (f"<AttentionResult {self.model!r} {self.kind} {self.n_layers}x{self.n_heads} heads, "
                f"{self.n_tokens} tokens, {self.nbytes / 2**20:.1f} MB>")

    @property
    def n_layers(self) -> int:
        return self.source.shape[0]

    @property
    def n_heads(self) -> int:
        return self.source.shape[1]

    @property
    def n_tokens(self) -> int:
        return self.source.shape[2]

    @property
    def n_keys(self) -> int:
        return self.source.shape[3]

    @property
    def keys(self) -> list[str]:
        """Labels of the key positions (the tokens themselves for self-attention)."""
        return self.key_tokens if self.key_tokens is not None else self.tokens

    @property
    def nbytes(self) -> int:
        """Bytes the result holds: its source's and its parts'."""
        return self.source.nbytes + sum(p.nbytes for p in self.parts.values())

    @property
    def weights_nbytes(self) -> int:
        """Bytes of the full ``[layer, head, query, key]`` float32 tensor (what :attr:`weights` would build)."""
        n_layers, n_heads, n_query, n_key = self.source.shape
        return 4 * n_layers * n_heads * n_query * n_key

    @property
    def weights(self) -> np.ndarray:
        """float32 ``[layer, head, query, key]``, built on each access.

        Raises:
            ValueError: over :data:`WEIGHTS_MAX_BYTES`; read such inputs with ``head``, ``row`` or ``overview``.
        """
        if isinstance(self.source, StoredWeights):
            return self.source.weights
        if self.weights_nbytes > WEIGHTS_MAX_BYTES:
            raise ValueError(
                f"All {self.n_layers * self.n_heads} heads of {self.n_tokens} tokens would take "
                f"{self.weights_nbytes / 2**30:.1f} GiB, over the {WEIGHTS_MAX_BYTES / 2**30:.0f} GiB bound of "
                "`weights`: read one head with head(layer, head), one row with row(layer, head, query), or "
                "every head at lower resolution with overview(size).")
        return np.stack([self.layer(layer) for layer in range(self.n_layers)])

    def head(self, layer: int, head: int) -> np.ndarray:
        """One head's attention, float32 ``[query, key]``: the model's own weights."""
        self._check(layer, head)
        return self.source.rows(layer, head, 0, self.n_tokens)

    def row(self, layer: int, head: int, query: int) -> np.ndarray:
        """What one query attends to in one head, float32 ``[key]``."""
        self._check(layer, head)
        self._check_query(query)
        return self.source.rows(layer, head, query, query + 1)[0]

    def query_rows(self, query: int) -> np.ndarray:
        """What one query attends to in every head, float32 ``[layer, head, key]`` (an image model's maps of one
        patch)."""
        self._check_query(query)
        if isinstance(self.source, StoredWeights):
            return self.source.weights[:, :, query, :].copy()
        return np.stack([np.stack([self.source.rows(layer, head, query, query + 1)[0]
                                   for head in range(self.n_heads)]) for layer in range(self.n_layers)])

    def kept_mean(self, layer: int) -> np.ndarray | None:
        """The heads of ``layer`` averaged, float32 ``[query, key]`` (read-only), as the model's forward computed
        them, when its source keeps them (DINOv2 past its traced 224 px: what rollout multiplies, so it recomputes
        no head); None otherwise (average :meth:`layer_rows` instead, as
        :func:`attnviz.analysis.aggregate.fused_layer` does)."""
        self._check(layer, 0)
        means = getattr(self.source, "means", None)
        if means is None:
            return None
        view = means[layer]
        view.flags.writeable = False
        return view

    def rows(self, layer: int, head: int, start: int, stop: int) -> np.ndarray:
        """Rows ``start..stop-1`` of one head, float32 ``[stop - start, key]`` (a long input read in slices)."""
        self._check(layer, head)
        if not 0 <= start < stop <= self.n_tokens:
            raise ValueError(f"rows {start}..{stop - 1} are not within 0..{self.n_tokens - 1}")
        return self.source.rows(layer, head, start, stop)

    def layer_rows(self, layer: int, start: int, stop: int) -> np.ndarray:
        """Rows ``start..stop-1`` of every head of one layer, float32 ``[head, stop - start, key]``: how analyses
        stream a long input (a block of rows of all heads at a time)."""
        self._check(layer, 0)
        if not 0 <= start < stop <= self.n_tokens:
            raise ValueError(f"rows {start}..{stop - 1} are not within 0..{self.n_tokens - 1}")
        return self.source.layer_rows(layer, start, stop)

    def row_blocks(self, max_bytes: int = 32 << 20) -> list[tuple[int, int]]:
        """Blocks of rows ``(start, stop)`` covering every query, each block of one layer's heads at most about
        ``max_bytes`` as float32 (at least one row): the steps to stream a layer with :meth:`layer_rows`."""
        step = max(1, max_bytes // (4 * self.n_heads * max(self.n_keys, 1)))
        return [(a, min(a + step, self.n_tokens)) for a in range(0, self.n_tokens, step)]

    def layer(self, layer: int) -> np.ndarray:
        """All heads of one layer, float32 ``[head, query, key]``.

        Raises:
            ValueError: over :data:`LAYER_MAX_BYTES` (read the heads one by one with ``head``).
        """
        self._check(layer, 0)
        if isinstance(self.source, StoredWeights):
            return self.source.weights[layer]
        size = self.weights_nbytes // self.n_layers
        if size > LAYER_MAX_BYTES:
            raise ValueError(f"The {self.n_heads} heads of a layer over {self.n_tokens} tokens would take "
                             f"{size / 2**20:.0f} MiB, over the {LAYER_MAX_BYTES / 2**20:.0f} MiB bound of "
                             "`layer`: read them one by one with head(layer, head).")
        return np.stack([self.head(layer, h) for h in range(self.n_heads)])

    def overview(self, size: int, keep: np.ndarray | None = None, contributions: bool = False) -> np.ndarray:
        """Every head at most ``size`` x ``size``: float32 ``[layer, head, s, s']`` (``s = min(query, size)``,
        ``s' = min(key, size)``), each cell the maximum of its block of weights (:func:`block_starts`): what the
        all-heads grid draws. Equal to :func:`block_max` of :attr:`weights`.

        Args:
            keep: bool ``[query]`` of a self-attention result: the heads over those positions only, each row
                renormalised over them (special tokens or the first token hidden, as the pages do).
            contributions: block maxima of the contributions (:meth:`contribution`) instead: each weight (after
                ``keep``'s renormalisation) times its key's value norm. Equal to :func:`block_max` of every head's
                :meth:`contribution` when nothing is hidden.

        Raises:
            ValueError: a bad ``size`` or ``keep``; ``contributions`` of a model without value norms.
        """
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"overview size must be a positive integer, got {size!r}")
        if keep is not None:
            keep = np.asarray(keep, dtype=bool)
            if keep.shape != (self.n_tokens,) or self.key_tokens is not None or not keep.any():
                raise ValueError("keep must be a bool mask of the query positions of a self-attention result, with "
                                 "at least one position kept")
        if contributions:
            self._norms()
            return self.source.overview(int(size), keep, contributions=True)
        return self.source.overview(int(size), keep)

    def contribution(self, layer: int, head: int) -> np.ndarray:
        """Norm-based contribution (Kobayashi et al. 2020, "Attention is Not Only a Weight"), float32
        ``[query, key]``: ``α_ij · ‖f_h(x_j)‖`` with ``f_h(x_j) = (x_j W_V^h + b_V^h) W_O^h``, the value of key ``j``
        through the head's slice of the output projection (without its bias).

        Raises:
            ValueError: the model's value norms were not captured (its output projection was not found).
        """
        norms = self._norms()
        return self.head(layer, head) * norms[layer, head][None, :]

    def value_norms(self) -> np.ndarray | None:
        """float32 ``[layer, head, key]``: ``‖f_h(x_j)‖`` (see :meth:`contribution`), or None when not captured."""
        return self.source.value_norms()

    def _norms(self) -> np.ndarray:
        """:meth:`value_norms`; ``ValueError`` (:data:`NO_NORMS`) when not captured."""
        norms = self.source.value_norms()
        if norms is None:
            raise ValueError(NO_NORMS.format(model=self.model))
        return norms

    def _check(self, layer: int, head: int) -> None:
        """``TypeError`` unless both are integers (numpy integers too, not bool); ``ValueError`` out of range."""
        for name, index, n in (("layer", layer, self.n_layers), ("head", head, self.n_heads)):
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
                raise TypeError(f"{name} must be an integer, got {index!r}")
            if not 0 <= index < n:
                raise ValueError(f"{name} must be in 0..{n - 1}, got {index}")

    def _check_query(self, query: int) -> None:
        if isinstance(query, bool) or not isinstance(query, (int, np.integer)):
            raise TypeError(f"query must be an integer, got {query!r}")
        if not 0 <= query < self.n_tokens:
            raise ValueError(f"query must be in 0..{self.n_tokens - 1}, got {query}")
