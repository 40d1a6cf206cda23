"""AttentionResult: layer and head indices are checked with messages that name the argument and the value."""
from __future__ import annotations

import re

import numpy as np
import pytest

from attnviz.result import AttentionResult, block_max


@pytest.fixture()
def result() -> AttentionResult:
    w = np.full((2, 3, 4, 4), 0.25, dtype=np.float32)  # [layer, head, query, key]
    w[1, 2] = np.eye(4)
    return AttentionResult(w, ["a", "b", "c", "d"], "test", "text")


@pytest.mark.parametrize("bad", ["1", 1.0, True, None, np.float64(1.0), np.bool_(True)])
def test_non_integer_layer_or_head_is_a_type_error_naming_it(result, bad):
    with pytest.raises(TypeError, match=f"^layer must be an integer, got {re.escape(repr(bad))}$"):
        result.head(bad, 0)
    with pytest.raises(TypeError, match=r"^head must be an integer, got "):
        result.head(0, bad)
    with pytest.raises(TypeError, match=r"^layer must be an integer, got "):
        result.layer(bad)


def test_string_index_message_quotes_the_value(result):
    with pytest.raises(TypeError) as e:
        result.head("1", 0)
    assert str(e.value) == "layer must be an integer, got '1'"


@pytest.mark.parametrize("index", [1, np.int64(1), np.int32(1), np.uint8(1)])
def test_python_and_numpy_integers_are_accepted(result, index):
    np.testing.assert_array_equal(result.head(index, np.int64(2)), np.eye(4))
    assert result.layer(index).shape == (3, 4, 4)


def test_out_of_range_is_still_a_value_error(result):
    with pytest.raises(ValueError, match=r"layer must be in 0\.\.1, got 2"):
        result.head(2, 0)
    with pytest.raises(ValueError, match=r"head must be in 0\.\.2, got -1"):
        result.head(0, -1)


def random_weights(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    w = np.random.default_rng(seed).random(shape).astype(np.float32)
    return w / w.sum(-1, keepdims=True)


class Computed:
    """A head source that is not StoredWeights: it computes each head from a stored tensor on demand (what a
    captured model's source does), so the result's own paths for long inputs are exercised without torch."""

    def __init__(self, weights: np.ndarray, norms: np.ndarray | None = None) -> None:
        self.w, self.norms, self.shape = weights, norms, weights.shape

    @property
    def nbytes(self) -> int:
        return 0

    def rows(self, layer, head, start, stop):
        return self.w[layer, head, start:stop].copy()

    def layer_rows(self, layer, start, stop):
        return self.w[layer, :, start:stop].copy()

    def overview(self, size, keep=None, contributions=False):
        from attnviz.result import StoredWeights

        return StoredWeights(self.w, self.norms).overview(size, keep, contributions)

    def value_norms(self):
        return self.norms


def test_head_row_rows_layer_and_weights_agree():
    w = random_weights((2, 3, 7, 7))
    for r in (AttentionResult(w, list("abcdefg"), "m", "text"),
              AttentionResult(Computed(w), list("abcdefg"), "m", "text")):
        np.testing.assert_array_equal(r.head(1, 2), w[1, 2])
        np.testing.assert_array_equal(r.row(1, 2, 5), w[1, 2, 5])
        np.testing.assert_array_equal(r.rows(0, 1, 2, 6), w[0, 1, 2:6])
        np.testing.assert_array_equal(r.layer_rows(1, 3, 7), w[1, :, 3:7])
        np.testing.assert_array_equal(r.layer(0), w[0])
        np.testing.assert_array_equal(r.weights, w)
        assert r.weights.dtype == np.float32 and r.weights_nbytes == w.nbytes
        blocks = r.row_blocks(max_bytes=4 * 3 * 7 * 3)  # three rows of all heads at a time
        assert blocks == [(0, 3), (3, 6), (6, 7)]
        with pytest.raises(ValueError, match="query must be in 0..6, got 7"):
            r.row(0, 0, 7)
        with pytest.raises(ValueError, match="rows 4..3"):
            r.rows(0, 0, 4, 4)


@pytest.mark.parametrize("n, size", [(7, 3), (512, 96), (1025, 96), (40, 64), (97, 96)])
def test_overview_is_the_block_maximum(n, size):
    """Each overview cell is the maximum of its block of the full head (blocks as block_starts says), the same
    from stored weights and from a computed source; and the same as the grid image's own downsampling."""
    from attnviz.render.raster import downsample_max
    from attnviz.result import block_starts

    w = random_weights((1, 2, n, n), seed=n)
    got = AttentionResult(Computed(w), [str(i) for i in range(n)], "m", "text").overview(size)
    s = min(n, size)
    assert got.shape == (1, 2, s, s) and got.dtype == np.float32
    starts = np.append(block_starts(n, size), n)
    want = np.array([[[[w[0, h, starts[i]:starts[i + 1], starts[j]:starts[j + 1]].max() for j in range(s)]
                       for i in range(s)] for h in range(2)]])
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(AttentionResult(w, [str(i) for i in range(n)], "m", "text").overview(size), want)
    np.testing.assert_array_equal(downsample_max(w, size), want)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "96"])
def test_overview_size_must_be_a_positive_integer(result, bad):
    with pytest.raises(ValueError, match="overview size must be a positive integer"):
        result.overview(bad)


def test_weights_past_the_bound_say_what_to_use(monkeypatch):
    import attnviz.result as result_module

    w = random_weights((2, 3, 16, 16))
    r = AttentionResult(Computed(w), [str(i) for i in range(16)], "m", "text")
    monkeypatch.setattr(result_module, "WEIGHTS_MAX_BYTES", w.nbytes - 1)
    monkeypatch.setattr(result_module, "LAYER_MAX_BYTES", w[0].nbytes - 1)
    with pytest.raises(ValueError, match=r"head\(layer, head\).*row\(layer, head, query\).*overview\(size\)"):
        _ = r.weights
    with pytest.raises(ValueError, match="one by one with head"):
        r.layer(0)
    np.testing.assert_array_equal(r.head(1, 1), w[1, 1])  # a head is always served


def test_nbytes_counts_the_source_and_the_parts():
    w, cross = random_weights((2, 3, 4, 4)), random_weights((2, 3, 4, 5))
    part = AttentionResult(cross, list("abcd"), "m", "seq2seq", key_tokens=list("vwxyz"))
    r = AttentionResult(w, list("abcd"), "m", "seq2seq", parts={"cross": part})
    assert r.nbytes == w.nbytes + cross.nbytes and part.n_keys == 5
    assert "4 tokens" in repr(r)


def test_contribution_is_weight_times_value_norm():
    w = random_weights((2, 3, 5, 5))
    norms = np.random.default_rng(1).random((2, 3, 5)).astype(np.float32) + 0.5
    r = AttentionResult(Computed(w, norms), list("abcde"), "m", "text")
    np.testing.assert_allclose(r.contribution(1, 2), w[1, 2] * norms[1, 2][None, :], rtol=1e-7)
    np.testing.assert_array_equal(r.value_norms(), norms)
    with pytest.raises(ValueError, match="contributions are not available"):
        AttentionResult(w, list("abcde"), "m", "text").contribution(0, 0)


def contributions_by_hand(w: np.ndarray, norms: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    """``[layer, head, query', key']``: the kept rows and keys, each row renormalised over them, each weight times
    its key's value norm, with plain loops over layers and heads."""
    index = np.arange(w.shape[2]) if keep is None else np.flatnonzero(keep)
    out = np.zeros((*w.shape[:2], len(index), len(index)), np.float32)
    for layer in range(w.shape[0]):
        for head in range(w.shape[1]):
            m = w[layer, head][np.ix_(index, index)]
            m = m / m.sum(-1, keepdims=True)
            out[layer, head] = m * norms[layer, head, index][None, :]
    return out


@pytest.mark.parametrize("n, size", [(9, 4), (9, 96), (40, 7)])
@pytest.mark.parametrize("hide", ["nothing", "some"])
def test_overview_of_contributions_is_their_block_maximum(n, size, hide):
    """overview(contributions=True) = block maxima of each head's contribution (with positions hidden: of the
    renormalised weights times the kept keys' norms), from stored weights and from a computed source; a result
    without value norms refuses it with contribution's message."""
    w = random_weights((2, 3, n, n), seed=n)
    norms = np.random.default_rng(n).random((2, 3, n)).astype(np.float32) * 3
    keep = None if hide == "nothing" else np.arange(n) % 3 != 1
    tokens = [str(i) for i in range(n)]
    want = block_max(contributions_by_hand(w, norms, keep), size)
    from attnviz.result import StoredWeights

    for source in (StoredWeights(w, norms), Computed(w, norms)):
        r = AttentionResult(source, tokens, "m", "text")
        got = r.overview(size, keep, contributions=True)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-6)
        if keep is None:  # the same as stacking contribution(layer, head)
            stacked = np.stack([[r.contribution(layer, h) for h in range(3)] for layer in range(2)])
            np.testing.assert_allclose(got, block_max(stacked, size), rtol=1e-6)
        assert not np.allclose(got, r.overview(size, keep))  # the weights' overview is another one
    with pytest.raises(ValueError, match="contributions are not available"):
        AttentionResult(w, tokens, "m", "text").overview(size, keep, contributions=True)


def test_a_result_pickles_without_torch():
    import pickle
    import subprocess
    import sys

    from attnviz.result import StoredWeights

    w = random_weights((1, 2, 3, 3))
    r = AttentionResult(StoredWeights(w, np.ones((1, 2, 3), np.float32)), list("abc"), "m", "text")
    back = pickle.loads(pickle.dumps(r))
    np.testing.assert_array_equal(back.head(0, 1), w[0, 1])
    assert back.tokens == r.tokens
    code = ("import pickle, sys; r = pickle.loads(sys.stdin.buffer.read()); "
            "assert r.head(0, 1).shape == (3, 3) and 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], input=pickle.dumps(r), check=True)


def test_shape_mismatches_are_refused():
    w = random_weights((1, 1, 3, 3))
    with pytest.raises(ValueError, match="2 tokens for 3 query positions"):
        AttentionResult(w, ["a", "b"], "m", "text")
    with pytest.raises(ValueError, match="key tokens"):
        AttentionResult(w, list("abc"), "m", "text", key_tokens=["x"])
    with pytest.raises(ValueError, match="kind"):
        AttentionResult(w, list("abc"), "m", "video")
    with pytest.raises(ValueError, match=r"\[layer, head, query, key\]"):
        AttentionResult(w[0], list("abc"), "m", "text")
