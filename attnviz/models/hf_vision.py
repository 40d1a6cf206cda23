"""Vision transformers from Hugging Face directories (ViT, DeiT, DINOv2, BEiT, CLIP's image tower...).

The picture goes through the directory's own image processor (``preprocessor_config.json``, read with
transformers' PIL image processor: no torchvision), with its resampling, rescaling and normalisation, at the size
the processor gives the model (its crop size when it crops). One thing differs: the whole picture is resized to
that size instead of resized then cropped at the centre, so the patch grid covers all of the picture, as for the
other image models of attnviz (an overlay on the picture then lines up with what the model saw).

Positions are the family's tokens before the patches ([CLS]; DeiT's [DIST]; DINOv2's registers [REG0]...) then
the patches row by row, labelled ``p{row},{col}``.
"""
from __future__ import annotations

import inspect
import logging

import numpy as np
import torch
from PIL import Image

from attnviz.extras import ImageExtras
from attnviz.images import Source, as_rgb
from attnviz.models import into_buffer
from attnviz.models.hf_dir import check_run, load_weights, refusing
from attnviz.models.hf_families import Family
from attnviz.models.hf_files import PROCESSOR_FILE, DirectoryFiles
from attnviz.models.vision import ImageAttentionModel
from attnviz.result import AttentionResult

log = logging.getLogger(__name__)

MAX_SIDE_PATCHES = 37
"""Largest grid side ``image_size`` may ask for (DINOv2's 518 px in 14 px patches)."""


class HFVisionModel(ImageAttentionModel):
    """A transformers vision encoder with eager attention and its image processor.

    ``run`` is thread-safe: the processor and the model are only read; the attention buffer is made per run.
    """

    def __init__(self, name: str, model: torch.nn.Module, processor, prefix: tuple[str, ...],
                 description: str = "", label: str = "") -> None:
        """``prefix``: labels of the tokens before the patches; ``label``: the family, for the description."""
        self.name, self.model, self.processor, self.prefix = name, model.eval(), processor, prefix
        cfg = model.config
        self.n_layers, self.n_heads = int(cfg.num_hidden_layers), int(cfg.num_attention_heads)
        self.patch = int(cfg.patch_size)
        self.native = int(cfg.image_size)  # the size its position table was made for
        self.size = processor_size(processor)
        self.grid = self._grid(self.size)
        self.interpolates = "interpolate_pos_encoding" in inspect.signature(model.forward).parameters
        """Whether the forward takes ``interpolate_pos_encoding`` (DINOv2 takes none: it always interpolates)."""
        self.resizable = self.interpolates or cfg.model_type.startswith("dinov2")
        self.description = description or (
            f"{label or 'vision transformer'} from {name}: {self.n_layers} layers x {self.n_heads} heads, "
            f"{self.grid[0]}x{self.grid[1]} patches at {self.size[1]}x{self.size[0]} px")
        example = {"pixel_values": self.preprocess(Image.new("RGB", (32, 32)), self.size)}
        self.buffered = into_buffer.prepare(model, {**example, **self._options(self.size)}, name)
        """Attention layers written into one buffer per run (:mod:`attnviz.models.into_buffer`); 0: stacked."""

    def _grid(self, size: tuple[int, int]) -> tuple[int, int]:
        (h, w), p = size, self.patch
        if h % p or w % p:
            raise ValueError(f"{self.name}: the processor's {w}x{h} px input is not a whole number of {p} px patches.")
        return h // p, w // p

    def _options(self, size: tuple[int, int]) -> dict[str, bool]:
        """``interpolate_pos_encoding=True`` where the input is not the size of the position table."""
        return {"interpolate_pos_encoding": True} if self.interpolates and size != (self.native,) * 2 else {}

    def preprocess(self, image: Image.Image, size: tuple[int, int]) -> torch.Tensor:
        """The processor's pixels of the whole picture at ``size`` (height, width): float32 ``[1, 3, h, w]``."""
        out = self.processor(images=image, return_tensors="pt", do_center_crop=False,
                             size={"height": size[0], "width": size[1]})
        return out["pixel_values"].float()

    def run(self, image: Image.Image | Source | None = None, image_size: int | None = None,
            **_: object) -> AttentionResult:
        """Attention of the model on one image.

        Args:
            image_size: side in pixels of a square input (a multiple of the patch size); default the processor's.
        Returns:
            AttentionResult with ``weights[layer, head, query, key]`` over the prefix tokens and ``rows * cols``
            patches, ``grid == (rows, cols)``, ``special`` True on the prefix; ``extras`` (:class:`ImageExtras`):
            ``input_size``, the ``(height, width)`` the model read.
        Raises:
            ValueError: no image or an unusable one (:func:`attnviz.load_image`), or a bad ``image_size``.
        """
        if image is None:
            raise ValueError("No image given: upload a picture or choose an example.")
        size = self.size if image_size is None else self._check_size(image_size)
        grid = self._grid(size)
        if size != self.size and not self.resizable:
            raise ValueError(f"{self.name} reads only {self.size[1]}x{self.size[0]} px pictures.")
        weights = self.forward_at(as_rgb(image), size)
        tokens = list(self.prefix) + [f"p{r},{c}" for r in range(grid[0]) for c in range(grid[1])]
        return AttentionResult(weights=weights, tokens=tokens, model=self.name, kind="image", grid=grid,
                               special=np.arange(len(tokens)) < len(self.prefix), extras=ImageExtras(input_size=size))

    def _check_size(self, image_size: object) -> tuple[int, int]:
        top = MAX_SIDE_PATCHES * self.patch
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size % self.patch \
                or not 2 * self.patch <= image_size <= top:
            raise ValueError(f"image_size must be a multiple of {self.patch} from {2 * self.patch} to {top} px, "
                             f"got {image_size!r}.")
        return image_size, image_size

    @torch.inference_mode()
    def forward_at(self, image: Image.Image, size: tuple[int, int]) -> np.ndarray:
        """``weights[layer, head, query, key]`` float32 of an RGB picture read at ``size``."""
        x = self.preprocess(image, size)
        n = len(self.prefix) + (size[0] // self.patch) * (size[1] // self.patch)
        buffer = into_buffer.new_buffer(self.buffered, (1, self.n_heads, n, n)) if self.buffered else None
        extra = {} if buffer is None else {into_buffer.KWARG: buffer}
        attentions = self.model(pixel_values=x, output_attentions=True, **self._options(size), **extra).attentions
        if not attentions or attentions[0] is None:
            raise ValueError(f"{self.name} returned no attention weights.")
        layers = buffer if buffer is not None else torch.stack(attentions).float()
        if layers.shape[-1] != n:
            raise ValueError(f"{self.name} returned attention over {layers.shape[-1]} positions, not the {n} of "
                             f"{len(self.prefix)} prefix tokens and the patches.")
        return layers[:, 0].numpy()

    def forward(self, image: Image.Image) -> tuple[np.ndarray, ImageExtras]:
        return self.forward_at(image, self.size), ImageExtras(input_size=self.size)


def processor_size(processor) -> tuple[int, int]:
    """``(height, width)`` of the pictures a processor gives its model: its crop when it crops, else its resize."""
    for attr, on in (("crop_size", getattr(processor, "do_center_crop", False)), ("size", True)):
        size = getattr(processor, attr, None)
        if on and size is not None:
            h, w = _get(size, "height"), _get(size, "width")
            if h and w:
                return int(h), int(w)
            if _get(size, "shortest_edge"):
                return (int(_get(size, "shortest_edge")),) * 2
    raise ValueError(f"The image processor {type(processor).__name__} states no input size.")


def _get(size, key: str):
    return size.get(key) if isinstance(size, dict) else getattr(size, key, None)


def load_vision(files: DirectoryFiles, fam: Family, name: str, description: str = "") -> HFVisionModel:
    """An image model from a checked directory (:func:`attnviz.models.hf_dir.load_directory` calls this).

    Raises:
        ValueError: no or unusable image processor, weights that do not load, or no attention from a check run.
    """
    from transformers import AutoImageProcessor

    if not files.has_processor:
        raise ValueError(f"{files.path} has no {PROCESSOR_FILE}: copy the image processor that came with the "
                         "model (processor.save_pretrained(folder)); it says how pictures are resized and normalised.")
    try:
        processor = AutoImageProcessor.from_pretrained(files.path, local_files_only=True, trust_remote_code=False)
    except Exception as e:  # ImportError (a backend not installed), ValueError, OSError...: one message
        raise ValueError(f"The image processor of {files.path} could not be loaded ({type(e).__name__}: {e}).") from e
    model = load_weights(files, fam)
    registers = int(getattr(model.config, "num_register_tokens", 0) or 0)
    prefix = fam.prefix + tuple(f"[REG{i}]" for i in range(registers))
    with refusing(name):
        loaded = HFVisionModel(name, model, processor, prefix, description, fam.label)
    check_run(loaded, image=Image.new("RGB", (64, 48), (120, 90, 60)))
    log.info("loaded %s from %s with %s", fam.label, files.path, type(processor).__name__)
    return loaded
