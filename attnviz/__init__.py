"""attnviz: attention maps of real transformer models, in the browser, in Python and on the command line.

Public contract (see the README): ``list_models``, ``load_model``, ``load_image``, ``rollout``, ``attention_flow``,
``mechanisms`` and ``AttentionResult``.
Shapes follow one convention, named in :mod:`attnviz.result`: ``weights[layer, head, query, key]``.

Importing attnviz changes nothing in the process (no environment variables, no malloc or GIL settings); the web
server applies its settings explicitly (:func:`attnviz.server.configure`).
"""
from attnviz import mechanisms
from attnviz.analysis.flow import attention_flow
from attnviz.analysis.rollout import rollout
from attnviz.images import load_image
from attnviz.models import list_models, load_model
from attnviz.result import AttentionResult

__all__ = ["AttentionResult", "attention_flow", "list_models", "load_image", "load_model", "mechanisms", "rollout"]
__version__ = "0.1.0"
