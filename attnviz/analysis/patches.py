"""Attention of vision transformers as maps over the patch grid (numpy only).

An image model's positions are ``prefix`` extra tokens (the CLS token, and registers if a model has them)
followed by ``rows * cols`` patches in row-major order; ``grid == (rows, cols)``.
"""
from __future__ import annotations

import numpy as np

from attnviz.analysis.aggregate import Attention, attention_shape, fuse_heads
from attnviz.analysis.rollout import rollout, rollout_row
from attnviz.result import NO_NORMS, AttentionResult


def n_prefix(n_tokens: int, grid: tuple[int, int]) -> int:
    """Number of non-patch tokens before the patches (1 for a ViT's CLS token)."""
    rows, cols = grid
    prefix = n_tokens - rows * cols
    if prefix < 0:
        raise ValueError(f"{n_tokens} positions cannot hold a {rows}x{cols} patch grid")
    return prefix


def patch_index(row: int, col: int, grid: tuple[int, int], prefix: int = 1) -> int:
    """Position (query/key index) of the patch at ``(row, col)``."""
    rows, cols = grid
    if not (0 <= row < rows and 0 <= col < cols):
        raise ValueError(f"patch ({row}, {col}) is outside the {rows}x{cols} grid")
    return prefix + row * cols + col


def to_grid(attention: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Attention over keys ``[..., key]`` as maps ``[..., rows, cols]`` of the patch keys (prefix keys dropped).

    The maps are not renormalised: a map's sum is the share of attention that went to patches.
    """
    a = np.asarray(attention)
    prefix = n_prefix(a.shape[-1], grid)
    return a[..., prefix:].reshape(*a.shape[:-1], *grid)


def query_maps(weights: Attention, grid: tuple[int, int], query: int = 0,
               contributions: bool = False) -> np.ndarray:
    """What one query attends to, in every head, as patch maps.

    Args:
        weights: ``[layer, head, query, key]``, or a result (only the query's rows are computed).
        query: position of the attending token (0 = CLS; see :func:`patch_index`).
        contributions: maps of the norm-based contributions (each weight times its key's value norm,
            :meth:`AttentionResult.contribution`) instead of the weights; ``weights`` must then be a result.
    Returns:
        ``[layer, head, rows, cols]`` float32.
    Raises:
        ValueError: a query out of range; contributions of weights alone or of a result without value norms.
    """
    n = attention_shape(weights)[2]
    if not 0 <= query < n:
        raise ValueError(f"query must be in 0..{n - 1}, got {query}")
    rows = weights.query_rows(query) if isinstance(weights, AttentionResult) else weights[:, :, query, :]
    if contributions:
        if not isinstance(weights, AttentionResult):
            raise ValueError("contributions need a result (its value norms), not weights alone")
        norms = weights.value_norms()
        if norms is None:
            raise ValueError(NO_NORMS.format(model=weights.model))
        rows = rows * norms
    return to_grid(rows, grid).astype(np.float32)


def layer_maps(weights: Attention, grid: tuple[int, int], query: int = 0,
               hows: tuple[str, ...] = ("mean", "max"), contributions: bool = False) -> np.ndarray:
    """Heads of each layer fused (mean, max or min), for one query (of its contributions with ``contributions``,
    see :func:`query_maps`).

    Returns:
        ``[len(hows), layer, rows, cols]`` float32.
    """
    maps = query_maps(weights, grid, query, contributions)  # [layer, head, rows, cols]
    return np.stack([fuse_heads(maps, how) for how in hows]).astype(np.float32)  # head is axis -3


def rollout_map(weights: Attention, grid: tuple[int, int], query: int = 0, head_fusion: str = "mean",
                discard_ratio: float = 0.0, progress=None) -> np.ndarray:
    """Attention rollout (:func:`attnviz.rollout`) of one query over the patches, ``[rows, cols]``; of a result,
    the query's row alone (:func:`attnviz.analysis.rollout.rollout_row`), pushed through the layers."""
    if isinstance(weights, AttentionResult):
        return to_grid(rollout_row(weights, query, head_fusion, discard_ratio, progress=progress), grid)
    return to_grid(rollout(weights, head_fusion, discard_ratio)[query], grid)
