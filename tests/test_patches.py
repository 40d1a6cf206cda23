"""attnviz.analysis.patches: attention of vision transformers as maps over the patch grid."""
from __future__ import annotations

import numpy as np
import pytest

import attnviz
from attnviz.analysis import patches
from attnviz.analysis.patches import layer_maps, patch_index, query_maps, to_grid

GRID = (3, 4)


@pytest.fixture()
def weights() -> np.ndarray:
    """Random attention [layer=2, head=3, query=13, key=13] (CLS + 3x4 patches), rows summing to 1."""
    w = np.random.default_rng(0).random((2, 3, 13, 13)).astype(np.float32)
    return w / w.sum(-1, keepdims=True)


def test_patch_index_is_where_to_grid_puts_the_patch():
    for r in range(3):
        for c in range(4):
            one_hot = np.zeros(13, np.float32)
            one_hot[patch_index(r, c, GRID)] = 1.0
            grid = to_grid(one_hot, GRID)
            assert grid[r, c] == 1.0 and grid.sum() == 1.0
    assert patch_index(0, 0, GRID) == 1 and patch_index(2, 3, GRID) == 12
    with pytest.raises(ValueError):
        patch_index(3, 0, GRID)


def test_query_maps_are_rows_of_the_weights(weights):
    maps = query_maps(weights, GRID, query=5)
    assert maps.shape == (2, 3, 3, 4)
    np.testing.assert_array_equal(maps[1, 2].ravel(), weights[1, 2, 5, 1:])
    np.testing.assert_allclose(maps.sum((-1, -2)) + weights[:, :, 5, 0], 1.0, atol=1e-6)
    with pytest.raises(ValueError):
        query_maps(weights, GRID, query=13)
    with pytest.raises(ValueError):
        to_grid(weights[0, 0, 0, :5], GRID)



def test_query_and_layer_maps_of_contributions(weights):
    """With contributions: each head's row of the query times the head's value norms, over the patches; fused per
    layer the same way. Weights alone or a result without norms cannot give them."""
    from attnviz.result import AttentionResult, StoredWeights

    norms = np.random.default_rng(1).random((2, 3, 13)).astype(np.float32) * 4
    r = AttentionResult(StoredWeights(weights, norms), [f"t{i}" for i in range(13)], "m", "image", grid=GRID)
    maps = query_maps(r, GRID, 5, contributions=True)
    for layer in range(2):
        for head in range(3):
            np.testing.assert_allclose(maps[layer, head].ravel(), r.contribution(layer, head)[5, 1:], rtol=1e-6)
    np.testing.assert_allclose(layer_maps(r, GRID, 5, ("mean", "max"), contributions=True),
                               np.stack([maps.mean(1), maps.max(1)]), rtol=1e-6)
    with pytest.raises(ValueError, match="need a result"):
        query_maps(weights, GRID, 5, contributions=True)
    with pytest.raises(ValueError, match="contributions are not available"):
        query_maps(AttentionResult(weights, r.tokens, "m", "image", grid=GRID), GRID, 5, contributions=True)

def test_layer_maps_fuse_heads(weights):
    fused = layer_maps(weights, GRID, 0, ("mean", "max", "min"))
    maps = query_maps(weights, GRID, 0)
    assert fused.shape == (3, 2, 3, 4)
    np.testing.assert_allclose(fused[0], maps.mean(1), atol=1e-7)
    np.testing.assert_allclose(fused[1], maps.max(1))
    np.testing.assert_allclose(fused[2], maps.min(1))


def test_rollout_map_is_the_cls_row_of_rollout(weights):
    m = patches.rollout_map(weights, GRID, 0, "mean", 0.0)
    np.testing.assert_allclose(m.ravel(), attnviz.rollout(weights)[0, 1:], atol=1e-7)
