"""Comparing two attention results: align their tokens, then subtract on the aligned positions (numpy only).

Two results rarely have the same tokens: two texts differ by some words, and two models split one text
differently. Positions are paired by a sequence alignment of the token strings (``difflib.SequenceMatcher``,
the longest matching blocks, in order); positions without a partner are left out of the difference.

- Two texts, one model: tokens are compared exactly. An inserted word shifts the later tokens; they still pair.
- Two models, one text: tokens are compared after :func:`normalise_token` (case, the ``##`` continuation mark
  and the leading space of byte-level tokens are ignored), so ``"the"`` (MiniLM) pairs with ``" The"``
  (SmolLM2), while a word the two tokenizers split differently is left out rather than guessed.

The difference ``A - B`` of an aligned head is ``A[a_i, a_j] - B[b_i, b_j]``: how much more query ``i``
attends to key ``j`` in A than in B. Raw weights are used, so where one side also attends to tokens the
other lacks, a row of the difference need not sum to 0; :func:`aligned_difference` can renormalise rows
over the aligned keys first.
"""
from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from attnviz.analysis.aggregate import renormalise_rows


@dataclass(frozen=True)
class Alignment:
    """Pairs of positions taken as the same token in A and in B, in increasing order on both sides.

    Attributes:
        a: int ``[pair]`` positions in A.
        b: int ``[pair]`` positions in B.
        labels: one label per pair: A's token (B's may differ in case or marks; see ``b``).
        n_a: number of tokens in A.
        n_b: number of tokens in B.
    """

    a: np.ndarray
    b: np.ndarray
    labels: list[str]
    n_a: int
    n_b: int

    @property
    def n(self) -> int:
        """Number of aligned pairs."""
        return int(self.a.size)

    @property
    def identity(self) -> bool:
        """True when every position of A pairs with the same position of B and nothing is left out."""
        return self.n_a == self.n_b == self.n and bool(np.all(self.a == np.arange(self.n))
                                                       and np.all(self.b == np.arange(self.n)))


def normalise_token(token: str) -> str:
    """A token string with tokenizer-specific marks removed: surrounding spaces, the WordPiece ``##`` prefix
    and case. ``" The"``, ``"the"`` and ``"##the"`` all become ``"the"``."""
    t = token.strip()
    if t.startswith("##") and len(t) > 2:
        t = t[2:]
    return t.casefold()


def align_tokens(a: list[str], b: list[str], key: Callable[[str], str] | None = None) -> Alignment:
    """Pair the positions of two token lists by their longest common in-order blocks.

    Args:
        a: tokens of A, ``[query_a]``.
        b: tokens of B, ``[query_b]``.
        key: how a token is compared (exact strings by default; :func:`normalise_token` across tokenizers).
            Tokens whose key is empty (whitespace-only tokens) are never paired.
    Returns:
        The alignment; identical lists give the identity.
    """
    ka = [key(t) if key else t for t in a]
    kb = [key(t) if key else t for t in b]
    blank_a = [f"\x00a{i}" if not k.strip() else k for i, k in enumerate(ka)]  # blanks match nothing
    blank_b = [f"\x00b{i}" if not k.strip() else k for i, k in enumerate(kb)]
    matcher = difflib.SequenceMatcher(None, blank_a, blank_b, autojunk=False)
    ia: list[int] = []
    ib: list[int] = []
    for block in matcher.get_matching_blocks():
        ia.extend(range(block.a, block.a + block.size))
        ib.extend(range(block.b, block.b + block.size))
    return Alignment(np.array(ia, dtype=np.int64), np.array(ib, dtype=np.int64), [a[i] for i in ia], len(a), len(b))


def aligned(matrix: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The rows and columns at ``positions`` of ``[..., query, key]`` self-attention: ``[..., pair, pair]``."""
    m = np.asarray(matrix)
    return m[..., positions, :][..., positions]


def aligned_difference(a: np.ndarray, b: np.ndarray, alignment: Alignment, renormalise: bool = False) -> np.ndarray:
    """``A - B`` on the aligned positions.

    Args:
        a: ``[..., query_a, key_a]`` attention of A (one head ``[query, key]``, or any leading axes).
        b: ``[..., query_b, key_b]`` attention of B, same leading axes.
        alignment: from :func:`align_tokens` on the two token lists.
        renormalise: first rescale each aligned row of A and of B to sum to 1 over the aligned keys.
    Returns:
        float32 ``[..., pair, pair]``; exactly 0 where the two inputs are identical.
    """
    if a.shape[-1] != alignment.n_a or b.shape[-1] != alignment.n_b:
        raise ValueError(f"matrices {a.shape} and {b.shape} do not fit an alignment of "
                         f"{alignment.n_a} and {alignment.n_b} tokens")
    sa = aligned(np.asarray(a, np.float32), alignment.a)
    sb = aligned(np.asarray(b, np.float32), alignment.b)
    if renormalise:
        sa, sb = renormalise_rows(sa), renormalise_rows(sb)
    return (sa - sb).astype(np.float32)


def relative_layer(layer: int, n_layers: int, n_layers_other: int) -> int:
    """The layer of a model with ``n_layers_other`` layers at the same relative depth as ``layer`` of a model
    with ``n_layers`` (first to first, last to last)."""
    if not 0 <= layer < n_layers:
        raise ValueError(f"layer must be in 0..{n_layers - 1}, got {layer}")
    if n_layers == 1:
        return n_layers_other - 1
    return int(round(layer * (n_layers_other - 1) / (n_layers - 1)))


def largest_changes(diff: np.ndarray, a: np.ndarray, b: np.ndarray, alignment: Alignment,
                    k: int = 10) -> list[dict[str, object]]:
    """The ``k`` aligned cells with the largest ``|A - B|``, largest first.

    Args:
        diff: ``[pair, pair]`` from :func:`aligned_difference` of ``a`` and ``b``.
        a: ``[query_a, key_a]`` of A; b: ``[query_b, key_b]`` of B (the raw values are reported).
    Returns:
        Rows ``{"query", "key", "A", "B", "A − B"}``; query and key are ``"{pair}·{label}"``, as on the axes of
        the difference figure.
    """
    n = diff.shape[-1]
    if diff.shape != (alignment.n, alignment.n):
        raise ValueError(f"difference {diff.shape} does not fit {alignment.n} aligned tokens")
    flat = np.abs(diff).ravel()
    order = np.argsort(-flat, kind="stable")[:k]
    rows = []
    for cell in order.tolist():
        i, j = divmod(cell, n)
        rows.append({"query": f"{i}·{alignment.labels[i]}", "key": f"{j}·{alignment.labels[j]}",
                     "A": float(a[alignment.a[i], alignment.a[j]]), "B": float(b[alignment.b[i], alignment.b[j]]),
                     "A − B": float(diff[i, j])})
    return rows


def unpaired(alignment: Alignment) -> tuple[list[int], list[int]]:
    """Positions of A and of B that have no partner."""
    pa, pb = set(alignment.a.tolist()), set(alignment.b.tolist())
    return [i for i in range(alignment.n_a) if i not in pa], [j for j in range(alignment.n_b) if j not in pb]
