"""attnviz.analysis.edges: which edges the head view keeps (top-k, share of mass, threshold) and the
sentence-pair directions."""
from __future__ import annotations

import numpy as np
import pytest

from attnviz.analysis.edges import EdgeRule, segment_mask, select_edges, select_mask


def random_heads(heads: int, queries: int, keys: int, seed: int = 0) -> np.ndarray:
    """``[head, query, key]`` with peaked rows (like real attention) summing to 1."""
    w = np.random.default_rng(seed).random((heads, queries, keys)) ** 6
    return (w / w.sum(-1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("share", [0.05, 0.3, 0.5, 0.9, 0.99, 1.0])
def test_mass_rule_keeps_at_least_the_share_with_the_fewest_edges(share):
    w = random_heads(3, 20, 25)
    keep = select_mask(w, EdgeRule("mass", share))
    kept = (w * keep).sum(-1)
    assert (kept >= share * w.sum(-1) - 1e-6).all()
    # Minimal: dropping the weakest kept edge of any row falls below the share.
    weakest = np.where(keep, w, np.inf).min(-1)
    assert (kept - weakest < share * w.sum(-1) + 1e-6).all()
    # And the kept edges are the largest ones.
    assert (np.where(keep, w, np.inf).min(-1) >= np.where(keep, -np.inf, w).max(-1)).all()


def test_top_k_and_threshold_rules():
    w = random_heads(2, 10, 12)
    keep = select_mask(w, EdgeRule("top_k", 3))
    assert (keep.sum(-1) == 3).all()
    assert (np.where(keep, w, np.inf).min(-1) >= np.where(keep, -np.inf, w).max(-1)).all()
    assert select_mask(w, EdgeRule("top_k", 50)).sum() == (w > 0).sum()
    np.testing.assert_array_equal(select_mask(w, EdgeRule("threshold", 0.2)), w >= 0.2)
    zero = np.zeros((1, 2, 2), dtype=np.float32)
    for rule in (EdgeRule("top_k", 1), EdgeRule("mass", 0.5), EdgeRule("threshold", 0)):
        assert not select_mask(zero, rule).any()  # zero weights are never edges


def test_rule_validation():
    for kind, value in [("top_k", 0), ("top_k", 1.5), ("mass", 0), ("mass", 1.2), ("threshold", -0.1), ("x", 1)]:
        with pytest.raises(ValueError):
            EdgeRule(kind, value)


def test_select_edges_is_coo_of_the_mask_and_respects_allowed():
    w = random_heads(2, 6, 6)
    e = select_edges(w, EdgeRule("top_k", 2))
    assert len(e) == 2 * 6 * 2
    np.testing.assert_array_equal(e.weight, w[e.head, e.query, e.key])
    allowed = np.zeros((6, 6), dtype=bool)
    allowed[:3, 3:] = True
    e2 = select_edges(w, EdgeRule("top_k", 2), allowed)
    assert ((e2.query < 3) & (e2.key >= 3)).all() and len(e2) <= len(e)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("kind, value", [("top_k", 2), ("mass", 0.9), ("threshold", 0.1)])
def test_select_edges_refuses_weights_that_are_not_finite(bad, kind, value):
    w = random_heads(2, 6, 6)
    w[1, 2, 3] = bad
    with pytest.raises(ValueError, match="not finite"):
        select_edges(w, EdgeRule(kind, value))


def test_segment_mask_directions():
    seg = np.array([0, 0, 0, 1, 1])
    assert segment_mask(seg, "all") is None
    ab = segment_mask(seg, "A→B")
    assert ab[:3, 3:].all() and ab.sum() == 6
    assert segment_mask(seg, "B→B").sum() == 4 and segment_mask(seg, "B→A")[3:, :3].all()
    special = np.array([True, False, False, False, True])
    assert segment_mask(seg, "A→A", special).sum() == 4  # [CLS] and the last [SEP] belong to no segment
    with pytest.raises(ValueError):
        segment_mask(seg, "A-B")
