"""Statistics per attention head (after Clark et al. 2019, "What Does BERT Look At?"), numpy only.

Every statistic is an average over query rows of one head, so each is a ``[layer, head]`` array:

- ``entropy``: entropy of a row in **nats** (``-Σ w ln w``); ``ln(n)`` for a uniform row over ``n`` keys, 0 for a
  row that puts everything on one key.
- ``distance``: mean attention distance ``Σ_k w[q, k] · |q − k|``, in tokens.
- ``cls``, ``sep``, ``punct``, ``self``: share of a row's attention on [CLS]-like tokens, on [SEP]-like tokens,
  on punctuation tokens and on the query token itself.
- ``prev``, ``next``: share on the token just before / just after the query (averaged over the queries that
  have one, so a pure previous-token head scores exactly 1).
- ``sink``: share on the first token, whatever it says (an "attention sink", Xiao et al. 2023: decoders park much
  of each row there).
"""
from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass

import numpy as np

from attnviz.analysis.aggregate import Attention, attention_shape
from attnviz.result import AttentionResult

CLS_TOKENS = frozenset({"[CLS]", "<s>", "<cls>", "<|begin_of_text|>", "<|im_start|>", "<bos>"})
SEP_TOKENS = frozenset({"[SEP]", "</s>", "<sep>", "<|end_of_text|>", "<|im_end|>", "<|endoftext|>", "<eos>"})

STATS: dict[str, str] = {
    "entropy": "Entropy (nats)",
    "distance": "Mean attention distance (tokens)",
    "cls": "Share to [CLS]",
    "sep": "Share to [SEP]",
    "punct": "Share to punctuation",
    "self": "Share to the token itself",
    "prev": "Share to the previous token",
    "next": "Share to the next token",
    "sink": "Share to the first token (sink)",
}
"""Statistic name → label with its unit; the order of the columns of :meth:`HeadStats.rows`."""


@dataclass(frozen=True)
class HeadStats:
    """One ``[layer, head]`` float64 array per statistic (see the module docstring for definitions)."""

    entropy: np.ndarray
    distance: np.ndarray
    cls: np.ndarray
    sep: np.ndarray
    punct: np.ndarray
    self: np.ndarray
    prev: np.ndarray
    next: np.ndarray
    sink: np.ndarray

    def get(self, name: str) -> np.ndarray:
        """The ``[layer, head]`` array of statistic ``name`` (one of :data:`STATS`)."""
        if name not in STATS:
            raise ValueError(f"statistic must be one of {tuple(STATS)}, got {name!r}")
        return getattr(self, name)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.entropy.shape)  # type: ignore[return-value]

    def rows(self) -> list[dict[str, float | int]]:
        """One dict per head: ``layer``, ``head`` and every statistic."""
        n_layers, n_heads = self.shape
        return [{"layer": layer, "head": head, **{s: float(self.get(s)[layer, head]) for s in STATS}}
                for layer in range(n_layers) for head in range(n_heads)]

    def csv(self) -> str:
        """CSV text: a header ``layer,head,entropy,...`` and one row per head."""
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["layer", "head", *STATS])
        for row in self.rows():
            w.writerow([row["layer"], row["head"], *(f"{row[s]:.6g}" for s in STATS)])
        return buf.getvalue()


def is_punctuation(token: str) -> bool:
    """True for a token made only of punctuation characters (ignoring spaces and ``##``/``Ġ`` markers)."""
    t = token.strip().removeprefix("##").strip("Ġ▁")
    return bool(t) and all(unicodedata.category(c).startswith("P") for c in t)


def token_masks(tokens: list[str], special: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Bool ``[key]`` masks of [CLS]-like, [SEP]-like and punctuation tokens.

    A special token (``special[i]``) that is not named like a separator counts as [CLS] when it is the first token.
    """
    cls = np.array([t.strip() in CLS_TOKENS for t in tokens], dtype=bool)
    sep = np.array([t.strip() in SEP_TOKENS for t in tokens], dtype=bool)
    if special is not None and len(tokens) and special[0] and not sep[0]:
        cls[0] = True
    punct = np.array([is_punctuation(t) for t in tokens], dtype=bool)
    return {"cls": cls, "sep": sep, "punct": punct & ~cls & ~sep}


def head_stats(weights: Attention, tokens: list[str], special: np.ndarray | None = None,
               progress=None) -> HeadStats:
    """Statistics of every head of a self-attention stack.

    Args:
        weights: ``[layer, head, query, key]``, rows summing to 1; or a result, read a block of rows of one layer
            at a time (a long input never needs the full tensor).
        tokens: one label per position (to find [CLS], [SEP] and punctuation).
        special: optional bool ``[query]`` of special tokens.
        progress: optional ``progress(done, total)`` called after each layer of a result.
    Returns:
        :class:`HeadStats`, each field ``[layer, head]``.
    Raises:
        ValueError: not ``[layer, head, query, key]`` self-attention, a token count that differs, NaN or inf.
    """
    n_layers, n_heads, n_query, n = attention_shape(weights)
    if n != n_query or (isinstance(weights, AttentionResult) and weights.key_tokens is not None):
        raise ValueError("head statistics need self-attention [layer, head, query, key], got shape "
                         f"{(n_layers, n_heads, n_query, n)}")
    if len(tokens) != n:
        raise ValueError(f"{len(tokens)} tokens for {n} positions")
    masks = token_masks(tokens, special)
    if not isinstance(weights, AttentionResult):
        sums = _row_sums(np.asarray(weights), 0, masks)
    else:
        sums = {name: np.zeros((n_layers, n_heads)) for name in _SUMS}
        causal = weights.causal
        for layer in range(n_layers):
            for a, b in weights.row_blocks():
                rows = weights.layer_rows(layer, a, b)  # [head, rows, key]
                if causal:  # a causal row has no weight past its query: the keys b.. add 0 to every statistic
                    rows = rows[..., : min(n, b + 1)]
                for name, value in _row_sums(rows, a, masks, n).items():
                    sums[name][layer] += value
            if progress is not None:
                progress(layer + 1, n_layers)
    zeros = np.zeros((n_layers, n_heads))
    return HeadStats(
        entropy=sums["entropy"] / n, distance=sums["distance"] / n, cls=sums["cls"] / n, sep=sums["sep"] / n,
        punct=sums["punct"] / n, self=sums["self"] / n,
        prev=sums["prev"] / (n - 1) if n > 1 else zeros, next=sums["next"] / (n - 1) if n > 1 else zeros,
        sink=sums["sink"] / n,
    )


_SUMS = ("entropy", "distance", "cls", "sep", "punct", "self", "prev", "next", "sink")


def _row_sums(w: np.ndarray, start: int, masks: dict[str, np.ndarray], n: int | None = None) -> dict[str, np.ndarray]:
    """Per statistic, the sum over rows ``start..start+rows-1`` of ``w [..., rows, key']`` (``key'`` the first keys
    of ``n``, the rest being 0) of each row's value: float64 ``[...]``."""
    w = np.asarray(w, dtype=np.float64)
    n = w.shape[-1] if n is None else n
    rows, width = w.shape[-2], w.shape[-1]
    if not np.isfinite(w).all():  # else NaN counts as 0 in the entropy and inf gives -inf
        raise ValueError("weights are not finite (NaN or inf): head statistics need finite attention weights")
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(w > 0, w * np.log(w), 0.0)
    queries = np.arange(start, start + rows)
    dist = np.abs(queries[:, None] - np.arange(width)[None, :])  # [rows, key']
    out = {"entropy": -plogp.sum((-1, -2)), "distance": (w * dist).sum((-1, -2))}
    for name, mask in masks.items():
        out[name] = w[..., mask[:width]].sum((-1, -2))
    inside = queries < width
    out["self"] = w[..., np.flatnonzero(inside), queries[inside]].sum(-1)
    prev = (queries >= 1) & (queries - 1 < width)
    out["prev"] = w[..., np.flatnonzero(prev), queries[prev] - 1].sum(-1)
    nxt = (queries + 1 < n) & (queries + 1 < width)
    out["next"] = w[..., np.flatnonzero(nxt), queries[nxt] + 1].sum(-1)
    out["sink"] = w[..., 0].sum(-1)
    return out
