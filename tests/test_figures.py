"""attnviz.render.figures: the interactive heatmap's axes carry the tokens."""
from __future__ import annotations

import numpy as np

from attnviz.render import heatmap_figure


def attention(n: int, heads=(2, 3)) -> np.ndarray:
    x = np.random.default_rng(1).random((*heads, n, n)).astype(np.float32)
    return x / x.sum(-1, keepdims=True)


def test_heatmap_figure_axes_carry_tokens_even_when_repeated():
    tokens = ["[CLS]", "the", "cat", "saw", "the", "dog", "[SEP]"]
    m = attention(7)[0, 0]
    fig = heatmap_figure(m, tokens, tokens, "t")
    hm = fig.data[0]
    assert list(hm.x) == [f"{i}·{t}" for i, t in enumerate(tokens)]
    assert len(set(hm.y)) == 7  # the two "the" stay distinct rows
    assert "query" in hm.hovertemplate and "key" in hm.hovertemplate
    np.testing.assert_allclose(np.asarray(hm.z), m)
