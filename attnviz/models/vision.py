"""What every image model of attnviz shares: input checking, preprocessing to a tensor and patch labels."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from attnviz.extras import ImageExtras
from attnviz.images import Source, as_rgb
from attnviz.models.base import AttentionModel
from attnviz.result import AttentionResult, HeadSource

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

    Subclasses set ``grid`` (patch rows, cols at the default size) and ``image_size`` (side in pixels) and
    implement :meth:`forward`; a model that reads several sizes overrides :meth:`input_size`.
    """

    kind = "image"
    grid: tuple[int, int]
    image_size: int

    @property
    def image_sizes(self) -> tuple[int, ...]:
        """Every side in pixels the model reads (the first is its default)."""
        return (self.image_size,)

    def input_size(self, image_size: int | None) -> int:
        """The side the model reads an image at: its own size (``None`` or that size; any other is a
        ``ValueError``)."""
        if image_size is None or image_size == self.image_size:
            return self.image_size
        raise ValueError(f"{self.name} reads images at {self.image_size} px only, not {image_size!r}.")

    def run(self, image: Image.Image | Source | None = None, image_size: int | None = None,
            progress: Callable[[int, int], None] | None = None, **_: object) -> AttentionResult:
        """Attention of the model on one image.

        Args:
            image_size: side in pixels the image is resized to (models that read several sizes: DINOv2).
            progress: called with ``(layers done, layers)`` as a long run goes (DINOv2 past 224 px).
        Returns:
            AttentionResult over ``1 + rows*cols`` positions (``tokens[0] == "[CLS]"``), ``grid == (rows, cols)``;
            ``extras`` (:class:`ImageExtras`) as the model reports, ``input_size`` the side read.
        Raises:
            ValueError: no image, one that cannot be used (see :func:`attnviz.load_image`), or an image size the
                model does not read.
        """
        size = self.input_size(image_size)
        if image is None:
            raise ValueError("No image given: upload a picture or choose an example.")
        source, extras, grid = self.forward(as_rgb(image), size, progress)
        n = source.shape[2]
        return AttentionResult(source, tokens=patch_tokens(grid), model=self.name, kind="image",
                               special=np.arange(n) == 0, grid=grid, extras=extras)

    def forward(self, image: Image.Image, size: int, progress: Callable[[int, int], None] | None = None
                ) -> tuple[HeadSource, ImageExtras, tuple[int, int]]:
        """Run on an RGB image resized to ``size`` px; return the head source (positions: [CLS], then the patches),
        what the model adds (``input_size == size``) and the patch grid ``(rows, cols)``."""
        raise NotImplementedError
