"""Attention flow (Abnar & Zuidema 2020) against hand-computed cases, a networkx reference and invariants;
rollout on the same hand case for comparison."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

import attnviz
from attnviz.analysis.flow import attention_flow, flow_row, flow_rows
from attnviz.analysis.rollout import residual_attention, rollout


def two_layer_case() -> np.ndarray:
    """Layer 0: both tokens attend to token 0; layer 1: both attend to token 1. ``[layer, head, query, key]``."""
    w = np.zeros((2, 1, 2, 2), dtype=np.float32)
    w[0, 0] = [[1, 0], [1, 0]]
    w[1, 0] = [[0, 1], [0, 1]]
    return w


def random_attention(layers: int, heads: int, n: int, seed: int = 0) -> np.ndarray:
    w = np.random.default_rng(seed).random((layers, heads, n, n)).astype(np.float32)
    return w / w.sum(-1, keepdims=True)


def test_flow_is_public():
    assert attnviz.attention_flow is attention_flow


def test_hand_computed_two_layers_two_tokens():
    # With the residual: A0 = [[1, 0], [.5, .5]], A1 = [[.5, .5], [0, 1]].
    # Output 0 -> input 0: via token 0 min(.5, 1) + via token 1 min(.5, .5) = 1.0; -> input 1: 0 + min(.5, .5) = .5.
    # Output 1 only reaches token 1 (capacity 1), which splits .5 / .5.
    flow = attention_flow(two_layer_case())
    np.testing.assert_allclose(flow, [[2 / 3, 1 / 3], [0.5, 0.5]], atol=1e-6)
    # Rollout multiplies instead: A1 @ A0.
    np.testing.assert_allclose(rollout(two_layer_case()), [[0.75, 0.25], [0.5, 0.5]], atol=1e-6)


@pytest.mark.parametrize("layers", [1, 2, 4])
def test_identity_attention_flows_to_itself(layers):
    w = np.broadcast_to(np.eye(5, dtype=np.float32), (layers, 3, 5, 5))
    np.testing.assert_allclose(attention_flow(w), np.eye(5), atol=1e-6)


def test_matches_networkx_max_flow_on_the_layered_graph():
    w = random_attention(3, 2, 5, seed=1)
    a = residual_attention(w)  # [layer, query, key]
    layers, n = a.shape[0], a.shape[-1]
    g = nx.DiGraph()
    for layer in range(layers):
        for i in range(n):
            for j in range(n):
                g.add_edge((layer + 1, i), (layer, j), capacity=float(a[layer, i, j]))
    ref = np.array([[nx.maximum_flow_value(g, (layers, q), (0, k)) for k in range(n)] for q in range(n)])
    ref /= ref.sum(1, keepdims=True)
    np.testing.assert_allclose(attention_flow(w), ref, atol=1e-6)


def test_one_layer_flow_is_the_residual_attention():
    w = random_attention(1, 2, 4, seed=2)
    np.testing.assert_allclose(attention_flow(w), residual_attention(w)[0], atol=1e-6)


def test_rows_subset_and_progress_per_output_token():
    w = random_attention(3, 2, 6, seed=3)
    calls = []
    full = attention_flow(w, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 6) for i in range(1, 7)]
    np.testing.assert_allclose(flow_rows(w, [4, 1]), full[[4, 1]], atol=1e-7)
    with pytest.raises(ValueError, match="output positions"):
        flow_rows(w, [6])


@pytest.mark.parametrize("layers", [1, 3])
def test_one_row_equals_its_row_of_the_matrix_with_progress_per_input_token(layers):
    w = random_attention(layers, 2, 6, seed=4)
    calls = []
    row = flow_row(w, 2, progress=lambda done, total: calls.append((done, total)))
    np.testing.assert_allclose(row, attention_flow(w)[2], atol=1e-7)
    assert row.dtype == np.float32 and row.shape == (6,)
    assert calls == ([(6, 6)] if layers == 1 else [(k, 6) for k in range(1, 7)])  # one max-flow per input token
    with pytest.raises(ValueError, match="output position"):
        flow_row(w, 6)


def test_cross_attention_is_refused():
    with pytest.raises(ValueError, match="self-attention"):
        attention_flow(np.full((2, 1, 3, 4), 0.25, dtype=np.float32))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights_are_refused(bad):
    w = random_attention(3, 2, 4, seed=5)
    w[2, 1, 0, 3] = bad
    for flow in (attention_flow, lambda x: flow_rows(x, [1]), lambda x: flow_row(x, 1)):
        with pytest.raises(ValueError, match="weights are not finite"):
            flow(w)


def test_real_model_flow_rows_sum_to_one(minilm):
    r = minilm.run(text="The cat sat on the mat.")
    flow = attention_flow(r.weights)
    assert flow.shape == (r.n_tokens, r.n_tokens) and flow.dtype == np.float32
    assert (flow >= 0).all()
    np.testing.assert_allclose(flow.sum(-1), 1.0, atol=1e-5)
