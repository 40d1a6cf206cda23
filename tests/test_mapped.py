"""A result's buffers in mappings of their own (attnviz.models.mapped): usable as torch.empty, out of malloc's heap,
unmapped with the last view of them."""
from __future__ import annotations

import gc
import pickle

import numpy as np
import torch

from attnviz.models import mapped


def _own_mapping_at(address: int) -> bool:
    """Whether ``address`` lies in a shared anonymous mapping (what ``mmap.mmap(-1, n)`` makes; malloc's heap and its
    large blocks are private)."""
    with open("/proc/self/maps") as f:
        for line in f:
            span, perms = line.split(maxsplit=2)[:2]
            lo, hi = (int(x, 16) for x in span.split("-"))
            if lo <= address < hi:
                return perms.endswith("s") and "/dev/zero" in line
    return False


def _own_mapping(array: np.ndarray) -> bool:
    return _own_mapping_at(array.ctypes.data)


def test_empty_is_a_writable_tensor_of_its_shape_and_type_in_a_mapping():
    for dtype in (torch.float32, torch.int32, torch.bool):
        t = mapped.empty((3, 2, 200, 64), dtype)
        assert t.shape == (3, 2, 200, 64) and t.dtype == dtype and t.is_contiguous()
        t.fill_(1)
        assert int(t.sum()) == t.numel()
        assert _own_mapping(t.numpy())


def test_zeros_are_zero_whether_mapped_or_from_the_heap():
    big, small = mapped.zeros((200, 200)), mapped.zeros((4, 4), torch.int32)
    assert not big.any() and not small.any()
    assert _own_mapping(big.numpy())
    assert not _own_mapping(small.numpy())  # under MIN_BYTES: from the heap


def test_the_mapping_goes_when_the_last_view_goes():
    t = mapped.empty((1 << 20,))
    view = t[10:20].numpy()
    address = t.numpy().ctypes.data
    del t
    gc.collect()
    assert _own_mapping_at(address)  # a numpy view keeps it
    del view
    gc.collect()
    assert not _own_mapping_at(address)


def test_a_mapped_array_pickles_as_its_values():
    t = mapped.empty((64, 300))
    t.copy_(torch.arange(64 * 300, dtype=torch.float32).view(64, 300))
    back = pickle.loads(pickle.dumps(t.numpy()))
    np.testing.assert_array_equal(back, t.numpy())


def test_a_captured_result_keeps_its_queries_and_keys_in_mappings(minilm):
    text = "The animal didn't cross the street because it was too tired. " * 8
    r = minilm.run(text=text)
    source = r.source
    assert _own_mapping(source.q) and _own_mapping(source.k)
    np.testing.assert_array_equal(r.head(1, 2), minilm.run(text=text).head(1, 2))
