"""Buffers a result keeps, in memory mapped for them alone instead of malloc's heap.

A run's captured queries and keys (4.7 MB each for a 512-token MiniLM text), key intervals, value norms, overview
and layer means are allocated when the forward starts and kept as long as the result is cached; the forward's
transient buffers (a layer's scores and weights) are allocated and freed around them. From malloc's heap, each
kept buffer sits between freed ones and keeps the heap from shrinking below it. In an anonymous mapping of its own,
a kept buffer never does, and when its result is dropped (evicted from the cache) its pages go back to the OS at
once. Eight sessions replayed (``bench/memory_replay.py --sessions 8 --reps 2``, alternately): peak RSS 1348-1359
MB from the heap, 1323-1342 MB mapped; most of the free heap at the peak is the forward's and the views' own.

:func:`empty` is ``torch.empty`` for such buffers: one mapping per call, page-aligned, unmapped when the tensor and
every view of it (numpy arrays included) are gone. Buffers under :data:`MIN_BYTES` come from the heap as usual.
"""
from __future__ import annotations

import mmap
from collections.abc import Sequence

import numpy as np
import torch

MIN_BYTES = 64 << 10
"""Smaller buffers are not worth a mapping of their own (a mapping rounds up to whole 4 KiB pages)."""


def empty(shape: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """An uninitialised tensor of ``shape`` and ``dtype`` in an anonymous mapping of its own (zero-filled by the
    OS); from the heap when under :data:`MIN_BYTES`."""
    n = int(np.prod(shape, dtype=np.int64)) * torch.empty((), dtype=dtype).element_size()
    if n < MIN_BYTES:
        return torch.empty(tuple(shape), dtype=dtype)
    buffer = np.frombuffer(mmap.mmap(-1, n), dtype=np.uint8)  # the array holds the mapping; unmapped with it
    return torch.from_numpy(buffer).view(dtype).view(tuple(shape))


def zeros(shape: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A zero tensor of ``shape`` in a mapping of its own (fresh anonymous pages are zero), as :func:`empty`."""
    t = empty(shape, dtype)
    return t if t.nbytes >= MIN_BYTES else t.zero_()
