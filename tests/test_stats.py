"""Head statistics on constructed attention patterns with known answers, and on the real model."""
from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from attnviz.analysis.stats import STATS, head_stats, is_punctuation, token_masks

TOKENS = ["[CLS]", "the", "cat", ",", "sat", ".", "[SEP]"]
N = len(TOKENS)


def stack(*heads: np.ndarray) -> np.ndarray:
    """One layer of the given ``[query, key]`` heads: ``[1, head, query, key]``."""
    return np.stack(heads)[None].astype(np.float32)


def previous_token_head(n: int = N) -> np.ndarray:
    m = np.zeros((n, n))
    m[0, 0] = 1  # the first token has no previous token: it attends to itself
    m[np.arange(1, n), np.arange(n - 1)] = 1
    return m


def test_pure_previous_and_next_token_heads_score_one():
    nxt = np.zeros((N, N))
    nxt[np.arange(N - 1), np.arange(1, N)] = 1
    nxt[-1, -1] = 1
    s = head_stats(stack(previous_token_head(), nxt), TOKENS)
    np.testing.assert_allclose(s.prev[0], [1.0, 0.0])
    np.testing.assert_allclose(s.next[0], [0.0, 1.0])
    np.testing.assert_allclose(s.entropy[0], [0.0, 0.0], atol=1e-12)  # one-hot rows
    np.testing.assert_allclose(s.distance[0], [(N - 1) / N, (N - 1) / N])


def test_uniform_head_has_entropy_log_n_and_known_distance():
    s = head_stats(stack(np.full((N, N), 1 / N)), TOKENS)
    assert s.entropy[0, 0] == pytest.approx(np.log(N))  # nats
    pos = np.arange(N)
    assert s.distance[0, 0] == pytest.approx(np.abs(pos[:, None] - pos[None, :]).mean())
    assert s.cls[0, 0] == pytest.approx(1 / N) and s.sep[0, 0] == pytest.approx(1 / N)
    assert s.punct[0, 0] == pytest.approx(2 / N)  # "," and "."
    assert s.self[0, 0] == pytest.approx(1 / N)


def test_identity_cls_and_sep_heads():
    to_cls = np.zeros((N, N))
    to_cls[:, 0] = 1
    to_sep = np.zeros((N, N))
    to_sep[:, -1] = 1
    s = head_stats(stack(np.eye(N), to_cls, to_sep), TOKENS)
    np.testing.assert_allclose(s.self[0], [1.0, 1 / N, 1 / N])
    np.testing.assert_allclose(s.cls[0], [1 / N, 1.0, 0.0])
    np.testing.assert_allclose(s.sep[0], [1 / N, 0.0, 1.0])
    np.testing.assert_allclose(s.distance[0, 0], 0.0)
    np.testing.assert_allclose(s.sink[0], [1 / N, 1.0, 0.0])  # the first token, whatever it is


def test_sink_is_the_first_tokens_share_in_a_causal_head():
    causal_uniform = np.tril(np.ones((N, N))) / np.arange(1, N + 1)[:, None]  # row q: 1/(q+1) on keys 0..q
    s = head_stats(stack(causal_uniform), TOKENS)
    assert s.sink[0, 0] == pytest.approx(np.mean(1 / np.arange(1, N + 1)))


def test_punctuation_and_special_token_detection():
    assert is_punctuation(".") and is_punctuation("##,") and is_punctuation(" ?!") and is_punctuation("Ġ,")
    assert not is_punctuation("a.") and not is_punctuation("[SEP]") and not is_punctuation("")
    m = token_masks(["<s>", "hi", "!", "</s>"])
    assert m["cls"].tolist() == [True, False, False, False]
    assert m["sep"].tolist() == [False, False, False, True]
    assert m["punct"].tolist() == [False, False, True, False]
    # An unnamed special first token counts as [CLS].
    assert token_masks(["<start>", "x"], np.array([True, False]))["cls"][0]


def test_shape_checks():
    with pytest.raises(ValueError, match="self-attention"):
        head_stats(np.full((1, 1, 2, 3), 1 / 3), ["a", "b"])
    with pytest.raises(ValueError, match="tokens"):
        head_stats(np.full((1, 1, 2, 2), 0.5), ["a"])
    with pytest.raises(ValueError, match="statistic"):
        head_stats(stack(np.eye(N)), TOKENS).get("nope")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights_are_refused(bad):
    w = stack(np.eye(N), np.eye(N))
    w[0, 1, 2, 2] = bad
    with pytest.raises(ValueError, match="weights are not finite"):
        head_stats(w, TOKENS)


def test_real_model_statistics_and_csv(minilm):
    r = minilm.run(text="Birds sing, and the old dog sleeps.")
    s = head_stats(r.weights, r.tokens, r.special)
    assert s.shape == (r.n_layers, r.n_heads)
    for name in STATS:
        v = s.get(name)
        assert v.shape == (r.n_layers, r.n_heads) and np.isfinite(v).all()
        if name not in ("entropy", "distance"):
            assert ((v >= -1e-9) & (v <= 1 + 1e-6)).all()
    assert (s.entropy <= np.log(r.n_tokens) + 1e-6).all()
    assert (s.cls + s.sep + s.punct <= 1 + 1e-5).all()  # disjoint token sets
    rows = list(csv.reader(io.StringIO(s.csv())))
    assert rows[0] == ["layer", "head", *STATS] and len(rows) == 1 + r.n_layers * r.n_heads


def test_statistics_of_a_result_stream_its_heads(minilm, monkeypatch):
    """On a result (heads computed on demand, read a block of rows at a time) the statistics equal those of its
    full weights; so they do for a causal model, whose rows are read only up to their query."""
    from attnviz.result import AttentionResult

    r = minilm.run(text="Statistics of a result, read a few rows of every head at a time, match the full tensor.")
    monkeypatch.setattr(AttentionResult, "row_blocks", lambda self, max_bytes=0: [(0, 5), (5, 11),
                                                                                   (11, self.n_tokens)])
    done = []
    got = head_stats(r, r.tokens, r.special, progress=lambda i, n: done.append(i))
    want = head_stats(r.weights, r.tokens, r.special)
    for name in STATS:
        np.testing.assert_allclose(got.get(name), want.get(name), atol=1e-9, err_msg=name)
    assert done == list(range(1, r.n_layers + 1))
    w = np.tril(np.random.default_rng(2).random((2, 3, 14, 14))).astype(np.float32)
    w /= w.sum(-1, keepdims=True)
    causal = AttentionResult(w, [str(i) for i in range(14)], "m", "text", causal=True)
    got = head_stats(causal, causal.tokens)
    want = head_stats(w, causal.tokens)
    for name in STATS:
        np.testing.assert_allclose(got.get(name), want.get(name), atol=1e-9, err_msg=name)
