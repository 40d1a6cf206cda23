"""DINOv2's vision transformer in plain torch, with transformers' ``Dinov2Model`` names and eager arithmetic (the
DINOv2-S weights of :mod:`attnviz.models.dinov2` load into it; see :mod:`attnviz.models.encoder_parts` for why).

The position table is interpolated to the input's patch grid as DINOv2 does (bicubic, in float32).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from attnviz.models.encoder_parts import (  # noqa: F401  (eager_attention_forward: the capture finds it here)
    Config,
    Conv2d,
    Embedding,
    Encoder,
    EncoderOutput,
    LayerNorm,
    Linear,
    attend,
    eager_attention_forward,
    parameter,
)

DEFAULTS = dict(model_type="dinov2", num_channels=3, mlp_ratio=4, layerscale_value=1.0, layer_norm_eps=1e-6,
                hidden_act="gelu", qkv_bias=True)


class Dinov2PatchEmbeddings(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.patch_size = (cfg.patch_size, cfg.patch_size)
        self.projection = Conv2d(cfg.num_channels, cfg.hidden_size, cfg.patch_size)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.projection(pixel_values.float()).flatten(2).transpose(1, 2)


class Dinov2Embeddings(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        side = cfg.image_size // cfg.patch_size
        self.cls_token = parameter(1, 1, cfg.hidden_size)
        self.mask_token = parameter(1, cfg.hidden_size)  # pre-training only: never used here
        self.patch_embeddings = Dinov2PatchEmbeddings(cfg)
        self.position_embeddings = parameter(1, side * side + 1, cfg.hidden_size)

    def interpolate_pos_encoding(self, embeddings: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """The position table for an input of ``height`` x ``width`` px: as is when it has the table's grid (and
        the forward is not being traced), else its patch rows resized bicubically to the input's grid."""
        n_patches, n_positions = embeddings.shape[1] - 1, self.position_embeddings.shape[1] - 1
        if not torch.jit.is_tracing() and n_patches == n_positions and height == width:
            return self.position_embeddings
        dim = embeddings.shape[-1]
        side = int(n_positions ** 0.5)
        patch_h, patch_w = self.patch_embeddings.patch_size
        table = self.position_embeddings[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)
        table = nn.functional.interpolate(table.to(torch.float32), size=(height // patch_h, width // patch_w),
                                          mode="bicubic", align_corners=False)
        return torch.cat((self.position_embeddings[:, :1], table.permute(0, 2, 3, 1).view(1, -1, dim)), dim=1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        height, width = pixel_values.shape[-2:]
        x = self.patch_embeddings(pixel_values)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        return x + self.interpolate_pos_encoding(x, height, width)


class Dinov2Attention(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.config = cfg
        self.num_attention_heads = cfg.num_attention_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        self.scaling = self.head_dim ** -0.5
        width = cfg.num_attention_heads * self.head_dim
        self.q_proj = Linear(cfg.hidden_size, width, bias=cfg.qkv_bias)
        self.k_proj = Linear(cfg.hidden_size, width, bias=cfg.qkv_bias)
        self.v_proj = Linear(cfg.hidden_size, width, bias=cfg.qkv_bias)
        self.o_proj = Linear(width, cfg.hidden_size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None,
                **kwargs: object) -> tuple[torch.Tensor, torch.Tensor | None]:
        out, weights = attend(self, x, (self.q_proj, self.k_proj, self.v_proj), self.head_dim, mask, **kwargs)
        return self.o_proj(out), weights


class Dinov2LayerScale(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.lambda1 = parameter(cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.lambda1


class Dinov2MLP(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        hidden = int(cfg.hidden_size * cfg.mlp_ratio)
        self.fc1 = Linear(cfg.hidden_size, hidden)
        self.fc2 = Linear(hidden, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(nn.functional.gelu(self.fc1(x)))


class Dinov2Layer(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.norm1 = LayerNorm(cfg.hidden_size, cfg.layer_norm_eps)
        self.attention = Dinov2Attention(cfg)
        self.layer_scale1 = Dinov2LayerScale(cfg)
        self.norm2 = LayerNorm(cfg.hidden_size, cfg.layer_norm_eps)
        self.mlp = Dinov2MLP(cfg)
        self.layer_scale2 = Dinov2LayerScale(cfg)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None,
                **kwargs: object) -> tuple[torch.Tensor, torch.Tensor | None]:
        a, weights = self.attention(self.norm1(x), mask, **kwargs)
        x = self.layer_scale1(a) + x
        return self.layer_scale2(self.mlp(self.norm2(x))) + x, weights


class Dinov2Encoder(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Dinov2Layer(cfg) for _ in range(cfg.num_hidden_layers))


class Dinov2Model(Encoder):
    """transformers' ``Dinov2Model`` (MLP blocks, no registers) for inference; made on the meta device, its
    weights come from :meth:`load_weights` (:func:`attnviz.models.dinov2.build_model`)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        self.config = Config(config, DEFAULTS)
        self.embeddings = Dinov2Embeddings(self.config)
        self.encoder = Dinov2Encoder(self.config)
        self.layernorm = LayerNorm(self.config.hidden_size, self.config.layer_norm_eps)

    def forward(self, pixel_values: torch.Tensor, output_attentions: bool = False,
                output_hidden_states: bool = False, **kwargs: object) -> EncoderOutput:
        """As ``Dinov2Model.forward`` (``last_hidden_state`` after the final norm; ``hidden_states`` before it);
        ``kwargs`` go to every attention call (the capture's run)."""
        out = self.run_layers(self.embeddings(pixel_values), None, output_attentions, output_hidden_states, **kwargs)
        out.last_hidden_state = self.layernorm(out.last_hidden_state)
        return out

