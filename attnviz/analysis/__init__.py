"""Analysis of extracted attention, numpy only (no torch, no streamlit)."""
from attnviz.analysis.aggregate import fuse_heads, keep_tokens, renormalise_rows, threshold
from attnviz.analysis.rollout import residual_attention, rollout

__all__ = ["fuse_heads", "keep_tokens", "renormalise_rows", "residual_attention", "rollout", "threshold"]
