"""attnviz.models.dinov2_net: attnviz's own DINOv2 computes what transformers' ``Dinov2Model`` computes with eager
attention on DINOv2-S's weights, at 224 px and at 448 px (its position table interpolated): attention weights,
hidden states and outputs within 1e-6."""
from __future__ import annotations

import pytest
import torch

from attnviz.models.dinov2_net import Dinov2Model
from tests.tensors import EXACT, largest_difference


@pytest.fixture(scope="module")
def dinov2_model():
    import attnviz

    return attnviz.load_model("dinov2-small")


@pytest.mark.parametrize("size", [224, 448])
def test_own_dinov2_equals_transformers_dinov2(dinov2_model, size):
    from transformers import Dinov2Config
    from transformers import Dinov2Model as Reference

    from attnviz.models.dinov2 import CONFIG

    with torch.device("meta"):
        ref = Reference(Dinov2Config(**CONFIG, attn_implementation="eager"))
    state = {k: v.clone() for k, v in dinov2_model.model.state_dict().items()}  # normal tensors: may need grad
    ref.load_state_dict(state, strict=True, assign=True)
    ref.eval()
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(size))
    with torch.inference_mode():
        own = dinov2_model.model(pixel_values=x, output_attentions=True, output_hidden_states=True)
        want = ref(pixel_values=x, output_attentions=True, output_hidden_states=True)
    assert isinstance(dinov2_model.model, Dinov2Model) and own.attentions[0].shape[-1] == 1 + (size // 14) ** 2
    assert largest_difference(own.attentions, want.attentions) <= EXACT
    assert largest_difference(own.hidden_states, want.hidden_states) <= EXACT
    assert float((own.last_hidden_state - want.last_hidden_state).abs().max()) <= EXACT
