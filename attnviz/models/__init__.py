"""Model loading: a registry of names, one module per model family."""
from attnviz.models.base import AttentionModel
from attnviz.models.registry import list_models, load_model, model_info

__all__ = ["AttentionModel", "list_models", "load_model", "model_info"]
