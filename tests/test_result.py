"""AttentionResult: layer and head indices are checked with messages that name the argument and the value."""
from __future__ import annotations

import re

import numpy as np
import pytest

from attnviz.result import AttentionResult


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
