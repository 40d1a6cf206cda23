"""Comparing tensors in the tests of attnviz's own modules against transformers'."""
from __future__ import annotations

import torch

EXACT = 1e-6
"""Largest difference allowed between attnviz's numbers and transformers' eager ones."""


def largest_difference(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> float:
    """The largest absolute difference between two equally long tuples of tensors (one per layer)."""
    assert len(a) == len(b)
    return max(float((x - y).abs().max()) for x, y in zip(a, b, strict=True))
