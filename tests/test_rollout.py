"""attnviz.analysis.rollout (Abnar & Zuidema 2020): identity, row sums, a hand-computed case, the discard ratio,
non-finite weights, the real model."""
from __future__ import annotations

import numpy as np
import pytest

import attnviz
from attnviz.analysis import residual_attention
from attnviz.analysis.rollout import residual_layer


def random_attention(layers=3, heads=4, n=7, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.random((layers, heads, n, n)).astype(np.float32) ** 3
    return x / x.sum(-1, keepdims=True)


def test_rollout_of_identity_attention_is_identity():
    eye = np.broadcast_to(np.eye(5, dtype=np.float32), (4, 3, 5, 5)).copy()
    np.testing.assert_allclose(attnviz.rollout(eye), np.eye(5), atol=1e-7)


def test_rollout_rows_sum_to_one_for_every_fusion():
    w = random_attention(layers=6, heads=12, n=9)
    for fusion in ("mean", "max", "min"):
        for discard in (0.0, 0.5, 0.9):
            r = attnviz.rollout(w, head_fusion=fusion, discard_ratio=discard)
            assert r.shape == (9, 9)
            np.testing.assert_allclose(r.sum(-1), 1, atol=1e-5)


def test_rollout_hand_computed_two_layers():
    # Layer 1 (first) sends everything to token 0; layer 2 swaps the tokens.
    w1 = np.array([[1.0, 0.0], [1.0, 0.0]])
    w2 = np.array([[0.0, 1.0], [1.0, 0.0]])
    w = np.stack([w1, w2])[:, None]  # [layer, head=1, query, key]
    a1 = np.array([[1.0, 0.0], [0.5, 0.5]])  # 0.5 W1 + 0.5 I
    a2 = np.array([[0.5, 0.5], [0.5, 0.5]])
    np.testing.assert_allclose(attnviz.rollout(w), a2 @ a1, atol=1e-7)
    np.testing.assert_allclose(attnviz.rollout(w), [[0.75, 0.25], [0.75, 0.25]], atol=1e-7)


def test_discard_ratio_drops_lowest_weights_but_never_cls_to_cls():
    w = random_attention(layers=1, heads=1, n=4)
    w[0, 0, 0] = [1e-6, 0.5, 0.3, 0.2 - 1e-6]
    a = residual_attention(w, discard_ratio=0.5)[0]
    assert a[0, 0] > 0.5  # kept (plus identity)
    np.testing.assert_allclose(a.sum(-1), 1)
    with pytest.raises(ValueError):
        attnviz.rollout(w, discard_ratio=1.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("fusion", ["mean", "max"])
def test_rollout_of_non_finite_weights_is_a_clear_error_not_zeros(bad, fusion):
    w = random_attention()
    w[1, 2, 3, 4] = bad  # one weight of one head
    with pytest.raises(ValueError, match=r"^weights are not finite \(NaN or inf\)"):
        attnviz.rollout(w, head_fusion=fusion)


def test_rollout_on_real_model_is_row_stochastic(minilm):
    r = minilm.run(text="Rollout mixes the layers of a real model.")
    roll = attnviz.rollout(r.weights)
    np.testing.assert_allclose(roll.sum(-1), 1, atol=1e-5)
    assert (roll >= 0).all()


def test_rollout_row_is_a_row_of_the_full_rollout():
    from attnviz.analysis.rollout import rollout_row

    w = random_attention(layers=4, heads=3, n=9, seed=4)
    for fusion, discard in (("mean", 0.0), ("max", 0.0), ("min", 0.3), ("mean", 0.5)):
        full = attnviz.rollout(w, fusion, discard)
        for query in (0, 4, 8):
            np.testing.assert_allclose(rollout_row(w, query, fusion, discard), full[query], atol=1e-6)
    with pytest.raises(ValueError, match="query must be a position in 0..8"):
        rollout_row(w, 9)


def test_rollout_of_a_result_reads_it_a_layer_at_a_time(minilm, monkeypatch):
    """A captured result (heads computed on demand) gives the rollout of its weights, whole and by row; past
    ROLLOUT_MAX_TOKENS the whole rollout says to take one token's, which still works."""
    import importlib

    rollout_module = importlib.import_module("attnviz.analysis.rollout")

    r = minilm.run(text="Rollout of a result reads one fused layer at a time, never the whole tensor.")
    assert r.n_tokens > 10
    np.testing.assert_allclose(attnviz.rollout(r, "max", 0.2), attnviz.rollout(r.weights, "max", 0.2), atol=1e-6)
    want = attnviz.rollout(r.weights)
    np.testing.assert_allclose(rollout_module.rollout_row(r, 3), want[3], atol=1e-6)
    monkeypatch.setattr(rollout_module, "ROLLOUT_MAX_TOKENS", 10)
    with pytest.raises(ValueError, match="rollout_row"):
        attnviz.rollout(r)
    done = []
    row = rollout_module.rollout_row(r, 0, progress=lambda i, n: done.append((i, n)))
    np.testing.assert_allclose(row, want[0], atol=1e-6)
    assert done == [(i, r.n_layers) for i in range(1, r.n_layers + 1)]


def test_rollout_row_of_a_result_streams_blocks_of_rows_and_skips_those_it_needs_not(minilm, monkeypatch):
    """In blocks of 5 rows, one query's rollout equals the row of the full rollout; the top layer computes only
    the block holding the query (its vector is 0 elsewhere), each later layer every block."""
    from attnviz.analysis.rollout import rollout_row
    from attnviz.result import AttentionResult

    r = minilm.run(text="A rollout row pushes one vector down through the layers, a block of rows at a time.")
    want = attnviz.rollout(r.weights)
    monkeypatch.setattr(AttentionResult, "row_blocks",
                        lambda self, max_bytes=0: [(a, min(a + 5, self.n_tokens)) for a in range(0, self.n_tokens, 5)])
    calls: list[tuple[int, int, int]] = []
    rows_of = AttentionResult.layer_rows
    monkeypatch.setattr(AttentionResult, "layer_rows",
                        lambda self, layer, a, b: calls.append((layer, a, b)) or rows_of(self, layer, a, b))
    query = 7
    np.testing.assert_allclose(rollout_row(r, query), want[query], atol=1e-6)
    blocks = -(-r.n_tokens // 5)
    top = r.n_layers - 1
    assert [c for c in calls if c[0] == top] == [(top, 5, 10)]
    assert len(calls) == 1 + (r.n_layers - 1) * blocks


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("discard", [0.0, 0.3])
def test_residual_layer_in_place_gives_the_formulas_numbers_and_leaves_its_input(dtype, discard):
    """0.5 W + 0.5 I, rows renormalised, as written out separately (a row of zeros keeps its 0.5 on the diagonal,
    then 1); the array given is not changed, whatever its type."""
    w = np.random.default_rng(5).random((40, 40)).astype(dtype)
    w /= w.sum(-1, keepdims=True)
    w[7] = 0
    given = w.copy()
    fused = w.astype(np.float64)
    if discard:
        flat = fused.reshape(-1).copy()
        lowest = np.argsort(flat, kind="stable")[:int(flat.size * discard)]
        flat[lowest[lowest != 0]] = 0
        fused = flat.reshape(w.shape)
    want = 0.5 * fused + 0.5 * np.eye(40)
    want = want / want.sum(-1, keepdims=True)
    np.testing.assert_array_equal(residual_layer(w, discard), want)
    np.testing.assert_array_equal(w, given)
