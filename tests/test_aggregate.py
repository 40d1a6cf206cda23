"""attnviz.analysis.aggregate: head fusion, hiding tokens (rows renormalised), thresholds."""
from __future__ import annotations

import numpy as np
import pytest

from attnviz.analysis import fuse_heads, keep_tokens, threshold


def random_attention(layers=3, heads=4, n=7, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.random((layers, heads, n, n)).astype(np.float32) ** 3
    return x / x.sum(-1, keepdims=True)


def test_mean_fusion_keeps_rows_stochastic_and_max_bounds_it():
    w = random_attention()
    mean, mx, mn = fuse_heads(w, "mean"), fuse_heads(w, "max"), fuse_heads(w, "min")
    assert mean.shape == (3, 7, 7)
    np.testing.assert_allclose(mean.sum(-1), 1, atol=1e-6)
    assert (mx >= mean - 1e-7).all() and (mn <= mean + 1e-7).all()
    with pytest.raises(ValueError):
        fuse_heads(w, "median")


def test_hiding_tokens_renormalises_rows():
    w = random_attention()
    keep = np.array([False, True, True, True, True, True, False])
    out = keep_tokens(w, keep)
    assert out.shape == (3, 4, 5, 5)
    np.testing.assert_allclose(out.sum(-1), 1, atol=1e-6)
    # relative weights among kept keys are unchanged
    ratio = out[0, 0, 0, 1] / out[0, 0, 0, 2]
    np.testing.assert_allclose(ratio, w[0, 0, 1, 2] / w[0, 0, 1, 3], rtol=1e-5)


def test_hiding_with_all_mass_on_hidden_tokens_gives_zero_rows_not_nan():
    w = np.zeros((1, 1, 3, 3), np.float32)
    w[..., 0] = 1.0  # every token looks only at token 0 (like [CLS])
    out = keep_tokens(w, np.array([False, True, True]))
    assert not np.isnan(out).any() and (out == 0).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_hiding_keeps_a_row_that_is_not_finite_visible_as_nan(bad):
    """A row holding NaN or inf still holds NaN after renormalising (so the views downstream refuse it), never
    zeros; the other rows are unchanged."""
    w = random_attention()
    w[0, 1, 2, 3] = bad
    keep = np.ones(w.shape[-1], dtype=bool)
    keep[0] = False
    out = keep_tokens(w, keep)
    assert np.isnan(out[0, 1, 1]).any()
    fine = np.ones(out.shape[:-1], dtype=bool)
    fine[0, 1, 1] = False
    np.testing.assert_allclose(out.sum(-1)[fine], 1, atol=1e-6)


def test_threshold_zeroes_small_weights_only():
    w = random_attention()
    out = threshold(w, 0.2)
    assert (out[w < 0.2] == 0).all() and (out[w >= 0.2] == w[w >= 0.2]).all()
    assert threshold(w, 0.0) is w
