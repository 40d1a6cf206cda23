"""attnviz: attention maps of real transformer models, in the browser, in Python and on the command line.

Public contract (see the README): ``list_models``, ``load_model``, ``rollout``, ``attention_flow`` and
``AttentionResult``.
Shapes follow one convention, named in :mod:`attnviz.result`: ``weights[layer, head, query, key]``.
"""
from attnviz.omp import prefer_passive_wait

prefer_passive_wait()  # before anything imports torch

from attnviz import mechanisms  # noqa: E402
from attnviz.analysis.flow import attention_flow  # noqa: E402
from attnviz.analysis.rollout import rollout  # noqa: E402
from attnviz.images import load_image  # noqa: E402
from attnviz.models import list_models, load_model  # noqa: E402
from attnviz.result import AttentionResult  # noqa: E402

__all__ = ["AttentionResult", "attention_flow", "list_models", "load_model", "mechanisms", "rollout"]
__version__ = "0.1.0"
__all__ += ["load_image"]
