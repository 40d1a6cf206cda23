"""Attention flow across layers (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers").

The per-layer matrices are those of rollout (:func:`attnviz.analysis.rollout.residual_attention`: heads averaged,
``A = 0.5 * W + 0.5 * I``, rows renormalised). They are the edge capacities of a layered graph with one node per
token per level: level 0 holds the input tokens, level ``L`` the outputs of the last layer, and the edge from
token ``i`` at level ``l + 1`` to token ``j`` at level ``l`` has capacity ``A_l[i, j]``. The flow of output
token ``q`` to input token ``k`` is the maximum flow from ``q`` at level ``L`` to ``k`` at level 0.

Max-flow is SciPy's Dinic implementation (:func:`scipy.sparse.csgraph.maximum_flow`), which needs integer
capacities: they are scaled by ``2**24`` and rounded, so each capacity is within ``3e-8`` of its real value.

Cost: one max-flow per (output, input) pair on a graph of ``(L - 1) * n + 2`` nodes and ``(L - 2) * n**2 + 2n``
edges, so the full matrix grows about as ``L * n**4``. Measured on this project's machine (2 CPU cores, shared;
MiniLM with 6 layers; ``bench/graph_flow.py``):

=========  ===============  ==================
 tokens     full matrix      one output token
=========  ===============  ==================
 16         0.05 s           0.003 s
 32         0.25 s           0.008 s
 64         2.0 s            0.03 s
 128        ~20 s            0.15 s
 256        ~10 min          2.5 s
=========  ===============  ==================

So for a 6-layer model the full matrix is practical up to :data:`FLOW_FULL_MAX_TOKENS` (64) tokens and one output
token's row up to :data:`FLOW_ROW_MAX_TOKENS` (256); :func:`estimate_seconds` scales this to other depths.
Images: one token of DINOv2-S (12 layers, 257 tokens) took 3.6 s (load average 3; 11 s at load 13; the
estimate says 7 s), so its full matrix would take a quarter to half an hour; the tiny ViTs (4 layers, 50 or 65
tokens) take 0.01-0.02 s per token. Rollout (a few matrix products) is instant at any length.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import numpy as np

from attnviz.analysis.aggregate import renormalise_rows
from attnviz.analysis.rollout import residual_attention

log = logging.getLogger(__name__)

SCALE = 1 << 24
"""Capacities are multiplied by this and rounded to integers for SciPy's max-flow."""
FLOW_FULL_MAX_TOKENS = 64
"""Above this many tokens the full flow matrix takes more than a few seconds (it grows about as n**4)."""
FLOW_ROW_MAX_TOKENS = 256
"""Above this many tokens even one output token's flow takes more than a few seconds."""

SECONDS_PER_EDGE = 4e-8
"""Measured cost of one max-flow per edge of the graph (upper end, 16-256 tokens, 2 cores)."""

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)``: after each output token (:func:`flow_rows`, :func:`attention_flow`) or
each input token of one row (:func:`flow_row`)."""


class _LayeredGraph:
    """The flow graph of one input, with the source's and the sink's edges rewritten in place per pair.

    Nodes: 0 = source (an output token at level ``L``), 1 = sink (an input token at level 0), and
    ``2 + (l - 1) * n + i`` for token ``i`` at level ``l`` in ``1..L-1``. Edges, in CSR order:
    the source's ``n`` edges to level ``L - 1`` (capacities ``A_{L-1}[q, :]``), then for each level-1 token its one
    edge to the sink (capacities ``A_0[:, k]``), then the full ``n x n`` edges from level ``l + 1`` to ``l``.
    """

    def __init__(self, layers: np.ndarray) -> None:
        n_layers, n, _ = layers.shape  # [layer, query, key]
        if n_layers < 2:
            raise ValueError("the layered graph needs at least 2 layers")
        self.caps = np.rint(layers * SCALE).astype(np.int32)  # [layer, query, key]
        self.n = n
        n_nodes = 2 + (n_layers - 1) * n
        level = lambda lvl: 2 + (lvl - 1) * n  # noqa: E731  first node of level ``lvl``
        indptr = [0, n, n]  # source: n edges; sink: none
        indices = [level(n_layers - 1) + np.arange(n)]
        data = [self.caps[-1, 0]]
        indptr += list(range(n + 1, 2 * n + 1))  # level-1 nodes: one edge each, to the sink
        indices.append(np.ones(n, dtype=np.int64))
        data.append(self.caps[0, :, 0])
        end = 2 * n
        for lvl in range(2, n_layers):  # level lvl -> level lvl-1 with A_{lvl-1}
            indptr += list(range(end + n, end + n * n + 1, n))
            end += n * n
            indices.append(np.tile(level(lvl - 1) + np.arange(n), n))
            data.append(self.caps[lvl - 1].ravel())
        import scipy.sparse as sp  # here: SciPy costs a process ~24 MB, and only flow needs it

        self.graph = sp.csr_array((np.concatenate(data).astype(np.int32), np.concatenate(indices).astype(np.int32),
                                   np.asarray(indptr, dtype=np.int32)), shape=(n_nodes, n_nodes))
        self.graph.has_sorted_indices = True

    def flow(self, query: int, key: int) -> float:
        """Max-flow from output token ``query`` to input token ``key``, in units of attention."""
        d = self.graph.data
        d[: self.n] = self.caps[-1, query]
        d[self.n: 2 * self.n] = self.caps[0, :, key]
        from scipy.sparse.csgraph import maximum_flow

        return maximum_flow(self.graph, 0, 1).flow_value / SCALE


def estimate_seconds(n_layers: int, n_tokens: int, n_rows: int | None = None) -> float:
    """Rough wall time of :func:`flow_rows` for ``n_rows`` output tokens (all by default) on this kind of machine:
    ``n_rows * n_tokens`` max-flows over ``(n_layers - 2) * n_tokens**2`` edges each."""
    rows = n_tokens if n_rows is None else n_rows
    if n_layers < 2:
        return 0.0
    return rows * n_tokens * max(1, n_layers - 2) * n_tokens**2 * SECONDS_PER_EDGE


def flow_rows(weights: np.ndarray, queries: Iterable[int] | None = None, head_fusion: str = "mean",
              progress: Progress | None = None) -> np.ndarray:
    """Attention flow of some output tokens (rows of :func:`attention_flow`).

    Args:
        weights: ``[layer, head, query, key]`` self-attention.
        queries: output positions to compute (all by default).
        head_fusion: how heads are fused per layer (``"mean"`` as in the paper).
        progress: called as ``progress(done, total)`` after each output token.
    Returns:
        ``[len(queries), key]`` float32, each row summing to 1.
    """
    return _flow(weights, queries, head_fusion, row_done=progress)


def flow_row(weights: np.ndarray, query: int, head_fusion: str = "mean",
             progress: Progress | None = None) -> np.ndarray:
    """Attention flow of one output token, reporting progress per input token (one max-flow each): what a page
    needs for a row that takes seconds (e.g. one DINOv2 token, see the module docstring).

    Args:
        weights: ``[layer, head, query, key]`` self-attention.
        query: the output position.
        head_fusion: how heads are fused per layer (``"mean"`` as in the paper).
        progress: called as ``progress(done, total)`` after each input token.
    Returns:
        ``[key]`` float32 summing to 1; equal to ``flow_rows(weights, [query])[0]``.
    """
    return _flow(weights, [query], head_fusion, key_done=progress)[0]


def _flow(weights: np.ndarray, queries: Iterable[int] | None, head_fusion: str,
          row_done: Progress | None = None, key_done: Progress | None = None) -> np.ndarray:
    """Rows of the flow matrix, ``[len(queries), key]``; ``row_done`` is called after each output token,
    ``key_done`` after each input token of the first row."""
    layers = residual_attention(weights, head_fusion)  # [layer, query, key], float64, rows sum to 1
    n = layers.shape[-1]
    rows = list(range(n)) if queries is None else [int(q) for q in queries]
    if any(not 0 <= q < n for q in rows):
        raise ValueError(f"output positions must be in 0..{n - 1}, got {rows}")
    if layers.shape[0] == 1:  # one layer: the only path from q to k is the edge itself
        out = layers[0][rows]
        if row_done:
            row_done(len(rows), len(rows))
        if key_done:
            key_done(n, n)
        return renormalise_rows(out).astype(np.float32)
    graph = _LayeredGraph(layers)
    out = np.zeros((len(rows), n))
    for done, q in enumerate(rows, start=1):
        for k in range(n):
            out[done - 1, k] = graph.flow(q, k)
            if key_done and done == 1:
                key_done(k + 1, n)
        if row_done:
            row_done(done, len(rows))
    log.debug("attention flow of %d output tokens over %d tokens, %d layers", len(rows), n, layers.shape[0])
    return renormalise_rows(out).astype(np.float32)


def attention_flow(weights: np.ndarray, head_fusion: str = "mean", progress: Progress | None = None) -> np.ndarray:
    """Attention flow (Abnar & Zuidema 2020): for each output token of the last layer, its max-flow to each input
    token through the residual-augmented, head-averaged attention graph; rows normalised to sum to 1.

    Practical up to :data:`FLOW_FULL_MAX_TOKENS` (64) tokens for a 6-layer model (about 2 s on 2 cores; the cost
    grows about as ``layers * tokens**4``, see :func:`estimate_seconds`); for longer inputs compute a few rows with
    :func:`flow_rows` (one row: 0.15 s at 128 tokens, 2.5 s at 256) or use rollout.

    Args:
        weights: ``[layer, head, query, key]`` self-attention.
        head_fusion: how heads are fused per layer (``"mean"`` as in the paper).
        progress: called as ``progress(done, total)`` after each output token.
    Returns:
        ``[query, key]`` float32: how much each output position draws on each input token; rows sum to 1.
    """
    return flow_rows(weights, None, head_fusion, progress)
