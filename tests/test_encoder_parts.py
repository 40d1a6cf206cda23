"""attnviz.models.encoder_parts: the own encoders' shared parts; with them the two default models load without
transformers' model code (nor ``torch._dynamo``, ``torch.distributed``, accelerate, SciPy or sympy), and the
padding mask is eager's."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from attnviz.models.encoder_parts import MIN, padding_mask

ROOT = Path(__file__).resolve().parents[1]


def test_the_default_models_load_without_transformers_model_code():
    code = ("import sys, attnviz; attnviz.load_model('minilm'); attnviz.load_model('dinov2-small'); "
            "print(sorted(m for m in ('transformers.modeling_utils', 'torch.distributed.tensor', 'accelerate', "
            "'torch._dynamo', 'scipy', 'sympy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_padding_mask_is_eagers_additive_mask():
    mask = padding_mask(torch.tensor([[1, 1, 0], [1, 1, 1]]), n_query=3)
    assert mask.shape == (2, 1, 3, 3) and mask.dtype == torch.float32
    assert (mask[0, 0, :, 2] == MIN).all() and (mask[0, 0, :, :2] == 0).all() and (mask[1] == 0).all()
    assert padding_mask(None, 3) is None
