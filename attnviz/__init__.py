"""attnviz: attention maps of real transformer models, in the browser, in Python and on the command line.

Public contract (see the README): ``list_models``, ``load_model``, ``rollout`` and ``AttentionResult``.
Shapes follow one convention, named in :mod:`attnviz.result`: ``weights[layer, head, query, key]``.
"""
from attnviz.analysis.rollout import rollout
from attnviz.models import list_models, load_model
from attnviz.result import AttentionResult

__all__ = ["AttentionResult", "list_models", "load_model", "rollout"]
__version__ = "0.1.0"
