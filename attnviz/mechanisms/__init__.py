"""How attention is computed, step by step, in float64 numpy (no torch, no Streamlit).

``attention(Q, K, V, score=..., mask=None, params=None)`` runs one of the scoring rules
("dot", "scaled_dot", "general", "additive", "mlp") and returns an :class:`AttentionTrace` holding every
intermediate: scores, scaled scores, masked scores, weights ``[query, key]`` (and their logs, so a weight that
underflows float64 is still written, never as 0) and context ``[query, d_v]``.
``multi_head_attention`` shows the split into heads, per-head attention, concatenation and output projection.
Masks are bool ``[query, key]``, True where attending is allowed.

>>> from attnviz import mechanisms
>>> t = mechanisms.attention([[1, 2, 3]], [[4, 5, 6], [7, 8, 9], [10, 11, 12]], [[1], [2], [3]], score="dot")
>>> t.scores.tolist()
[[32.0, 50.0, 68.0]]
"""
from attnviz.mechanisms.explain import compare_rules, mask_note, rule_note, scaling_note
from attnviz.mechanisms.fmt import (
    format_exp,
    format_matrix,
    format_number,
    format_probabilities,
    format_probability,
    format_vector,
    latex_number,
    latex_text,
    one_minus,
)
from attnviz.mechanisms.inputs import CLASSIC, TUTORIAL, Preset, random_preset, read_matrix
from attnviz.mechanisms.masks import apply_mask, causal_mask, log_softmax, padding_mask, softmax
from attnviz.mechanisms.multihead import (
    MultiHeadTrace,
    identity_projections,
    merge_heads,
    multi_head_attention,
    project,
    random_projections,
    split_heads,
)
from attnviz.mechanisms.params import PARAM_NAMES, RULES, default_params, param_shapes
from attnviz.mechanisms.rules import (
    RULE_NAMES,
    AttentionTrace,
    additive,
    attention,
    dot_product,
    general,
    mlp_scored,
    scaled_dot_product,
)

__all__ = [
    "CLASSIC", "PARAM_NAMES", "RULES", "RULE_NAMES", "TUTORIAL", "AttentionTrace", "MultiHeadTrace", "Preset",
    "additive", "apply_mask", "attention", "causal_mask", "compare_rules", "default_params", "dot_product",
    "format_exp", "format_matrix", "format_number", "format_probabilities", "format_probability", "format_vector",
    "general", "identity_projections", "latex_number", "latex_text", "log_softmax", "mask_note", "merge_heads",
    "mlp_scored", "multi_head_attention", "one_minus", "padding_mask", "param_shapes", "project", "random_preset",
    "random_projections", "read_matrix", "rule_note", "scaled_dot_product", "scaling_note", "softmax", "split_heads",
]
