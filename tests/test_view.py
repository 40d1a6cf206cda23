"""attnviz.analysis.view: a result's heads as a page shows them (positions hidden, rows renormalised, a threshold)
equal what keep_tokens, threshold and block maxima give on the full weights."""
from __future__ import annotations

import numpy as np
import pytest

from attnviz.analysis import keep_tokens, threshold
from attnviz.analysis.aggregate import fuse_heads
from attnviz.analysis.view import ViewedAttention
from attnviz.result import AttentionResult, StoredWeights, block_max


def result_of(n: int = 23, causal: bool = False, seed: int = 0) -> AttentionResult:
    w = np.random.default_rng(seed).random((2, 3, n, n)).astype(np.float32) ** 4
    if causal:
        w = np.tril(w)
    w /= w.sum(-1, keepdims=True)
    special = np.zeros(n, bool)
    special[[0, n // 2, n - 1]] = True
    return AttentionResult(w, [f"t{i}" for i in range(n)], "m", "text", special=special, causal=causal)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("hide", ["nothing", "special", "sink"])
@pytest.mark.parametrize("minimum", [0.0, 0.05])
def test_views_equal_the_full_tensor_with_the_options_applied(causal, hide, minimum, monkeypatch):
    r = result_of(causal=causal)
    keep = {"nothing": None, "special": ~r.special, "sink": np.arange(r.n_tokens) != 0}[hide]
    want = r.weights if keep is None else keep_tokens(r.weights, keep)
    want = threshold(want, minimum)
    v = ViewedAttention(r, keep, minimum)
    monkeypatch.setattr(ViewedAttention, "_blocks", lambda self: [(0, 4), (4, 9), (9, self.n_tokens)])
    assert v.n_tokens == want.shape[2] and len(v.tokens) == v.n_tokens
    if keep is not None:
        assert v.tokens == [t for t, k in zip(r.tokens, keep, strict=True) if k]
    np.testing.assert_allclose(v.head(1, 2), want[1, 2], atol=1e-7)
    np.testing.assert_allclose(v.layer(0, [0, 2]), want[0, [0, 2]], atol=1e-7)
    np.testing.assert_allclose(v.layer_rows(1, 3, 8), want[1, :, 3:8], atol=1e-7)
    for how in ("mean", "max"):
        np.testing.assert_allclose(v.fused(1, how), fuse_heads(want[1], how), atol=1e-7)
    for size in (5, 7, 96):
        np.testing.assert_allclose(v.overview(size), block_max(want, size), atol=1e-7)


def test_a_head_is_a_new_array_and_hiding_everything_is_refused():
    r = result_of()
    h = ViewedAttention(r).head(0, 0)
    h[:] = 7
    assert r.head(0, 0).max() < 7
    with pytest.raises(ValueError, match="every position"):
        ViewedAttention(r, np.zeros(r.n_tokens, bool))
    with pytest.raises(ValueError, match="does not fit"):
        ViewedAttention(r, np.ones(3, bool))


def test_cross_attention_is_shown_whole():
    w = np.full((1, 1, 2, 3), 1 / 3, np.float32)
    r = AttentionResult(w, ["a", "b"], "m", "seq2seq", key_tokens=["x", "y", "z"])
    v = ViewedAttention(r, np.array([False, True]))
    assert v.keep is None and v.keys == ["x", "y", "z"] and v.head(0, 0).shape == (2, 3)


def test_a_captured_result_hides_positions_in_its_own_overview(minilm):
    """MiniLM's result computes heads from its capture: its overview with positions hidden equals the block maxima
    of the renormalised full tensor."""
    r = minilm.run(text="Hidden tokens leave the rows renormalised over the others, in every head and layer.")
    for keep in (~r.special, np.arange(r.n_tokens) != 0):
        want = keep_tokens(r.weights, keep)
        for size in (5, 96):
            np.testing.assert_allclose(ViewedAttention(r, keep, 0.01).overview(size),
                                       threshold(block_max(want, size), 0.01), atol=1e-6)
    with pytest.raises(ValueError, match="at least one position"):
        r.overview(8, np.zeros(r.n_tokens, bool))


@pytest.mark.parametrize("hide", ["nothing", "special"])
@pytest.mark.parametrize("minimum", [0.0, 0.3])
def test_contributions_are_the_shown_weights_times_the_shown_keys_norms(hide, minimum, monkeypatch):
    """With contributions on, every view is the kept, renormalised weights times the value norms of the kept keys,
    then thresholded (the threshold applies to the contributions), computed here with numpy alone."""
    r0 = result_of()
    norms = np.random.default_rng(5).random((2, 3, r0.n_tokens)).astype(np.float32) * 2
    r = AttentionResult(StoredWeights(r0.weights, norms), r0.tokens, "m", "text", special=r0.special)
    keep = None if hide == "nothing" else ~r.special
    index = np.arange(r.n_tokens) if keep is None else np.flatnonzero(keep)
    w = r.weights[:, :, index][..., index]
    w = w / w.sum(-1, keepdims=True)
    c = w * norms[:, :, None, index]
    want = np.where(c >= minimum, c, 0).astype(np.float32)
    assert (want == 0).any() == (minimum > 0)
    v = ViewedAttention(r, keep, minimum, contributions=True)
    monkeypatch.setattr(ViewedAttention, "_blocks", lambda self: [(0, 4), (4, 9), (9, self.n_tokens)])
    assert v.measure == "contribution" and ViewedAttention(r, keep, minimum).measure == "weight"
    np.testing.assert_allclose(v.head(1, 2), want[1, 2], rtol=1e-6)
    np.testing.assert_allclose(v.layer(0, [0, 2]), want[0, [0, 2]], rtol=1e-6)
    np.testing.assert_allclose(v.layer_rows(1, 3, 8), want[1, :, 3:8], rtol=1e-6)
    np.testing.assert_allclose(v.fused(1, "mean"), want[1].mean(0), rtol=1e-6)
    np.testing.assert_allclose(v.fused(1, "max"), want[1].max(0), rtol=1e-6)
    for size in (5, 96):
        np.testing.assert_allclose(v.overview(size), block_max(want, size), rtol=1e-6)
    if keep is None:
        np.testing.assert_allclose(v.head(0, 1), threshold(r.contribution(0, 1), minimum), rtol=1e-6)


def test_contributions_of_a_result_without_norms_are_refused():
    with pytest.raises(ValueError, match="contributions are not available"):
        ViewedAttention(result_of(), contributions=True)
