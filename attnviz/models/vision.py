"""What every image model of attnviz shares: input checking, preprocessing to a tensor and patch labels."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from attnviz.extras import ImageExtras
from attnviz.images import Source, as_rgb
from attnviz.models.base import AttentionModel
from attnviz.result import AttentionResult

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLS = "[CLS]"


def patch_tokens(grid: tuple[int, int]) -> list[str]:
    """Labels of a ViT's positions: ``"[CLS]"`` then ``"p{row},{col}"`` in row-major patch order."""
    rows, cols = grid
    return [CLS] + [f"p{r},{c}" for r in range(rows) for c in range(cols)]


def to_tensor(image: Image.Image, size: int, mean: Sequence[float], std: Sequence[float],
              channels: int = 3) -> torch.Tensor:
    """Resize the whole picture to ``size`` x ``size`` (bicubic, no crop, so patches cover all of it) and
    normalise.

    Args:
        image: RGB image.
        channels: 3 for RGB, 1 for grey (luminance).
    Returns:
        float32 ``[1, channels, size, size]``.
    """
    im = image.convert("L") if channels == 1 else image.convert("RGB")
    im = im.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=3.0)
    a = np.asarray(im, dtype=np.float32) / 255.0
    a = a[:, :, None] if a.ndim == 2 else a  # [size, size, channels]
    a = (a - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]


class ImageAttentionModel(AttentionModel):
    """Base of the image models: ``run(image=...)`` takes a PIL image or anything :func:`attnviz.load_image` reads.

    Subclasses set ``grid`` (patch rows, cols) and implement :meth:`forward`.
    """

    kind = "image"
    grid: tuple[int, int]

    def run(self, image: Image.Image | Source | None = None, **_: object) -> AttentionResult:
        """Attention of the model on one image.

        Returns:
            AttentionResult with ``weights[layer, head, query, key]`` over ``1 + rows*cols`` positions
            (``tokens[0] == "[CLS]"``), ``grid == (rows, cols)``; ``extras`` (:class:`ImageExtras`) as the
            model reports.
        Raises:
            ValueError: no image, or one that cannot be used (see :func:`attnviz.load_image`).
        """
        if image is None:
            raise ValueError("No image given: upload a picture or choose an example.")
        weights, extras = self.forward(as_rgb(image))
        return AttentionResult(weights=weights, tokens=patch_tokens(self.grid), model=self.name, kind="image",
                               special=np.arange(weights.shape[2]) == 0, grid=self.grid, extras=extras)

    def forward(self, image: Image.Image) -> tuple[np.ndarray, ImageExtras]:
        """Run on an RGB image; return ``weights[layer, head, query, key]`` float32 and what the model adds."""
        raise NotImplementedError
