"""attnviz.analysis.compare: token alignment, the aligned difference, relative layers."""
from __future__ import annotations

import numpy as np
import pytest

from attnviz.analysis.compare import (
    align_tokens,
    aligned,
    aligned_difference,
    largest_changes,
    normalise_token,
    relative_layer,
    unpaired,
)
from attnviz.render import heatmap_figure
from attnviz.render.figures import MASKED_COLOR, causal_mask, difference_figure


def rows_summing_to_one(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    w = np.random.default_rng(seed).random(shape).astype(np.float32)
    return w / w.sum(-1, keepdims=True)


def test_identical_tokens_align_as_identity():
    toks = ["[CLS]", "the", "cat", "sat", "the", "[SEP]"]
    al = align_tokens(toks, list(toks))
    assert al.identity and al.n == 6
    assert al.a.tolist() == al.b.tolist() == list(range(6))
    assert al.labels == toks
    assert unpaired(al) == ([], [])


def test_insertion_shifts_later_tokens():
    a = ["[CLS]", "the", "cat", "sat", "[SEP]"]
    b = ["[CLS]", "the", "big", "cat", "sat", "[SEP]"]
    al = align_tokens(a, b)
    assert al.a.tolist() == [0, 1, 2, 3, 4]
    assert al.b.tolist() == [0, 1, 3, 4, 5]  # "big" has no partner; everything after it moves by one
    assert unpaired(al) == ([], [2])
    assert not al.identity


def test_substitution_and_repeats_keep_order():
    a = ["it", "was", "too", "tired", ".", "it"]
    b = ["it", "was", "too", "wide", ".", "it"]
    al = align_tokens(a, b)
    assert list(zip(al.a.tolist(), al.b.tolist(), strict=True)) == [(0, 0), (1, 1), (2, 2), (4, 4), (5, 5)]
    assert np.all(np.diff(al.a) > 0) and np.all(np.diff(al.b) > 0)


def test_across_tokenizers_pairs_normalised_pieces_only():
    minilm = ["[CLS]", "the", "animal", "didn", "'", "t", "cross", ".", "[SEP]"]
    smollm = ["The", " animal", " didn", "'t", " cross", "."]
    al = align_tokens(minilm, smollm, key=normalise_token)
    pairs = [(minilm[i], smollm[j]) for i, j in zip(al.a.tolist(), al.b.tolist(), strict=True)]
    assert pairs == [("the", "The"), ("animal", " animal"), ("didn", " didn"), ("cross", " cross"), (".", ".")]
    assert al.labels == ["the", "animal", "didn", "cross", "."]  # A's spelling
    assert unpaired(al) == ([0, 4, 5, 8], [3])  # specials and the differently split "'t" are left out
    assert normalise_token("##ing") == "ing" and normalise_token("##") == "##"


def test_blank_tokens_never_pair():
    al = align_tokens(["a", " ", "b"], ["a", " ", "b"], key=normalise_token)
    assert al.a.tolist() == [0, 2]


def test_difference_of_identical_inputs_is_exactly_zero():
    w = rows_summing_to_one((3, 4, 7, 7))
    al = align_tokens(list("abcdefg"), list("abcdefg"))
    d = aligned_difference(w, w.copy(), al)
    assert d.shape == (3, 4, 7, 7) and d.dtype == np.float32
    assert np.all(d == 0)
    assert np.all(aligned_difference(w[1, 2], w[1, 2], al, renormalise=True) == 0)


def test_difference_uses_the_aligned_cells():
    a = rows_summing_to_one((4, 4), seed=1)
    b = rows_summing_to_one((5, 5), seed=2)
    al = align_tokens(["x", "y", "z", "w"], ["x", "new", "y", "z", "w"])
    d = aligned_difference(a, b, al)
    for p, (i, j) in enumerate(zip(al.a, al.b, strict=True)):
        for q, (k, m) in enumerate(zip(al.a, al.b, strict=True)):
            assert d[p, q] == pytest.approx(a[i, k] - b[j, m], abs=1e-7)
    np.testing.assert_array_equal(aligned(b, al.b), b[np.ix_([0, 2, 3, 4], [0, 2, 3, 4])])
    renorm = aligned_difference(a, b, al, renormalise=True)
    np.testing.assert_allclose(renorm.sum(-1), 0, atol=1e-6)  # both sides sum to 1 over the shared keys
    rows = largest_changes(d, a, b, al, k=3)
    assert len(rows) == 3 and abs(rows[0]["A − B"]) == pytest.approx(float(np.abs(d).max()))
    assert rows[0]["A"] - rows[0]["B"] == pytest.approx(rows[0]["A − B"], abs=1e-6)
    with pytest.raises(ValueError):
        aligned_difference(a, a, al)


def test_relative_layer_maps_first_to_first_and_last_to_last():
    assert relative_layer(0, 6, 30) == 0 and relative_layer(5, 6, 30) == 29
    assert relative_layer(3, 6, 30) == 17 and relative_layer(29, 30, 6) == 5
    assert relative_layer(0, 1, 12) == 11
    with pytest.raises(ValueError):
        relative_layer(6, 6, 30)


def test_masked_cells_are_blank_not_zero():
    w = np.tril(rows_summing_to_one((4, 4)))
    fig = heatmap_figure(w, list("abcd"), list("abcd"), masked=causal_mask(4))
    z, grey = np.asarray(fig.data[0].z), np.asarray(fig.data[1].z)
    assert np.all(np.isnan(z[causal_mask(4)])) and np.all(z[~causal_mask(4)] == w[~causal_mask(4)])
    assert np.all(grey[causal_mask(4)] == 1) and np.all(np.isnan(grey[~causal_mask(4)]))
    assert fig.data[1].colorscale[0][1] == MASKED_COLOR and fig.data[1].showscale is False
    assert fig.data[0].zmax == pytest.approx(float(w.max()))
    d = difference_figure(w - w.T, list("abcd"), list("abcd"), masked=causal_mask(4))
    lower = np.abs((w - w.T)[~causal_mask(4)]).max()
    assert d.data[0].zmax == pytest.approx(lower) and d.data[0].zmin == pytest.approx(-lower)
