"""Analysis of extracted attention, numpy only (no torch, no streamlit)."""
from attnviz.analysis.aggregate import fuse_heads, keep_tokens, renormalise_rows, threshold
from attnviz.analysis.edges import EdgeRule, Edges, segment_mask, select_edges
from attnviz.analysis.flow import attention_flow, flow_rows
from attnviz.analysis.rollout import residual_attention, rollout
from attnviz.analysis.stats import STATS, HeadStats, head_stats

__all__ = ["STATS", "EdgeRule", "Edges", "HeadStats", "attention_flow", "flow_rows", "fuse_heads", "head_stats",
           "keep_tokens", "renormalise_rows", "residual_attention", "rollout", "segment_mask", "select_edges",
           "threshold"]
