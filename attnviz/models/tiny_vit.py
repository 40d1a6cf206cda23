"""A small Vision Transformer classifier, the architecture of attnviz's own image models (vit-fashion, shapes-vit).

Pre-norm blocks as in ViT (Dosovitskiy et al. 2021) and vit-pytorch: patch embedding, a CLS token, learned positions,
``depth`` blocks of multi-head self-attention and MLP, a linear head on the CLS token. The queries, keys and values
pass through the named module ``parts`` (:class:`attnviz.models.recorder.AttentionParts`) and the post-softmax,
pre-dropout weights through ``attend`` (``nn.Softmax``), so that a recorder can keep either without the model knowing
about visualisation.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from attnviz.models.recorder import AttentionParts


@dataclass
class TinyViTConfig:
    """Hyper-parameters of :class:`TinyViT`."""

    image_size: int  # side of the square input image, pixels
    patch_size: int  # side of a square patch, pixels; must divide image_size
    channels: int  # input channels: 1 (grey) or 3 (RGB)
    n_classes: int  # outputs of the classification head
    dim: int = 64  # width of the token embeddings
    depth: int = 4  # number of transformer blocks
    heads: int = 4  # attention heads per block; must divide dim
    mlp_ratio: float = 2.0  # hidden width of the MLP as a multiple of dim
    dropout: float = 0.0  # dropout on attention weights (after recording) and MLP/projection outputs
    stem: str = "linear"  # patch embedding: "linear" (ViT) or "conv" (3x3 stride-2 convolutions, Xiao et al. 2021)

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ValueError("Image dimensions must be divisible by the patch size.")
        if self.stem not in ("linear", "conv"):
            raise ValueError(f"stem must be 'linear' or 'conv', got {self.stem!r}")
        if self.stem == "conv" and (self.patch_size < 2 or self.patch_size & (self.patch_size - 1)):
            raise ValueError("A convolutional stem needs a patch size that is a power of 2.")
        if self.dim % self.heads:
            raise ValueError("The embedding width (dim) must be divisible by the number of heads.")

    @property
    def grid(self) -> tuple[int, int]:
        """Patch grid ``(rows, cols)``."""
        side = self.image_size // self.patch_size
        return side, side

    def to_dict(self) -> dict:
        return asdict(self)


def patch_embedding(cfg: TinyViTConfig) -> nn.Module:
    """``[B, channels, H, W]`` -> ``[B, dim, H / patch, W / patch]``: one token per patch.

    ``"linear"`` projects each patch on its own (a ``patch x patch`` convolution with the same stride, as in ViT).
    ``"conv"`` is a small stack of 3x3 stride-2 convolutions (batch-normalised) ending on the same grid
    ("early convolutions help transformers see better", Xiao et al. 2021): each token still stands for its
    patch, but also sees a little of the neighbouring pixels; it trains much faster on small data.
    """
    if cfg.stem == "linear":
        return nn.Conv2d(cfg.channels, cfg.dim, kernel_size=cfg.patch_size, stride=cfg.patch_size)
    n = int(math.log2(cfg.patch_size))
    layers: list[nn.Module] = []
    width = cfg.channels
    for i in range(n):
        out = cfg.dim if i == n - 1 else max(16, cfg.dim >> (n - 1 - i))
        layers.append(nn.Conv2d(width, out, kernel_size=3, stride=2, padding=1, bias=i == n - 1))
        if i < n - 1:
            layers += [nn.BatchNorm2d(out), nn.GELU()]
        width = out
    return nn.Sequential(*layers)


class Attention(nn.Module):
    """Multi-head self-attention; weights go through ``self.attend``."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.attend = nn.Softmax(dim=-1)
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(dim, dim)
        self.parts = AttentionParts()

    @property
    def n_heads(self) -> int:
        return self.heads

    @property
    def out_proj(self) -> nn.Linear:
        """The output projection (for the value norms of :mod:`attnviz.models.recorder`)."""
        return self.proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape  # batch, tokens, dim
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)  # 3 x (B, nh, T, hs)
        q, k, v, _ = self.parts(q, k, v)
        attn = self.attend((q @ k.transpose(-2, -1)) * self.scale)  # (B, nh, T, T), rows sum to 1
        y = (self.drop(attn) @ v).transpose(1, 2).reshape(B, T, C)
        return self.proj(y)


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``."""

    def __init__(self, cfg: TinyViTConfig) -> None:
        super().__init__()
        hidden = int(cfg.dim * cfg.mlp_ratio)
        self.norm1 = nn.LayerNorm(cfg.dim)
        self.attn = Attention(cfg.dim, cfg.heads, cfg.dropout)
        self.norm2 = nn.LayerNorm(cfg.dim)
        self.mlp = nn.Sequential(nn.Linear(cfg.dim, hidden), nn.GELU(), nn.Dropout(cfg.dropout),
                                 nn.Linear(hidden, cfg.dim), nn.Dropout(cfg.dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    """ViT classifier: ``[B, channels, image_size, image_size]`` -> logits ``[B, n_classes]``."""

    def __init__(self, cfg: TinyViTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        rows, cols = cfg.grid
        self.patch = patch_embedding(cfg)
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.pos = nn.Parameter(torch.randn(1, 1 + rows * cols, cfg.dim) * 0.02)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``[B, channels, H, W]`` -> the first block's input ``[B, 1 + rows*cols, dim]`` (CLS first)."""
        B = x.shape[0]
        tokens = self.patch(x).flatten(2).transpose(1, 2)  # (B, rows*cols, dim), row-major patches
        return torch.cat([self.cls.expand(B, -1, -1), tokens], dim=1) + self.pos  # (B, 1 + rows*cols, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[:, 0]))
