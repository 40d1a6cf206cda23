"""Vision transformers from Hugging Face directories (ViT, DeiT, DINOv2, BEiT, CLIP's image tower...).

The picture goes through the directory's own image processor (``preprocessor_config.json``, read with
transformers' PIL image processor: no torchvision), with its resampling, rescaling and normalisation, at the size
the processor gives the model (its crop size when it crops). One thing differs: the whole picture is resized to
that size instead of resized then cropped at the centre, so the patch grid covers all of the picture, as for the
other image models of attnviz (an overlay on the picture then lines up with what the model saw).

Positions are the family's tokens before the patches ([CLS]; DeiT's [DIST]; DINOv2's registers [REG0]...) then
the patches row by row, labelled ``p{row},{col}``.

The attention is read through :class:`attnviz.models.reader.AttentionReader`: where the load-time probe finds the
heads recomputed from the captured queries and keys equal to the eager weights (ViT, DeiT, DINOv2, CLIP), a result
holds the capture (at 37 x 37 patches, 12 layers x 12 heads of 64: about 1/10 of the weights); where it does not
(BEiT: its relative position bias is an additive term the capture does not keep), the weights themselves, up to
:data:`attnviz.models.capture.STORED_MAX_BYTES`.
"""
from __future__ import annotations

import inspect
import logging
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from attnviz.extras import ImageExtras
from attnviz.images import Source, as_rgb
from attnviz.models.capture import STORED_MAX_BYTES
from attnviz.models.hf_dir import check_run, load_weights, refusing
from attnviz.models.hf_families import Family
from attnviz.models.hf_files import PROCESSOR_FILE, DirectoryFiles
from attnviz.models.reader import AttentionReader, ReadsAttention
from attnviz.models.vision import ImageAttentionModel
from attnviz.result import AttentionResult, HeadSource

log = logging.getLogger(__name__)

MAX_SIDE_PATCHES = 37
"""Largest grid side ``image_size`` may ask for (DINOv2's 518 px in 14 px patches)."""


class HFVisionModel(ReadsAttention, ImageAttentionModel):
    """A transformers vision encoder and its image processor, its attention read by an
    :class:`~attnviz.models.reader.AttentionReader` (captured, or stored where the capture is not exact).

    ``run`` is thread-safe: the processor and the model are only read; every run fills buffers of its own.
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
        probe = (np.random.default_rng(1).random((self.size[0], self.size[1], 3)) * 255).astype(np.uint8)
        self.reader = AttentionReader(model, self._inputs(Image.fromarray(probe), self.size), name,
                                      positions=self.positions)
        """Reads the attention of a forward: captured where that is exact on the probe (a picture of noise at the
        processor's size), else the weights stored."""

    def positions(self, inputs) -> int:
        """The prefix tokens and the patches of ``inputs["pixel_values"]`` ``[batch, 3, height, width]``."""
        height, width = inputs["pixel_values"].shape[-2:]
        return len(self.prefix) + (height // self.patch) * (width // self.patch)

    def _inputs(self, image: Image.Image, size: tuple[int, int]) -> dict[str, object]:
        """The forward's inputs for ``image`` at ``size``: its pixels first (the reader takes the batch from them),
        then ``interpolate_pos_encoding`` where the forward takes it and ``size`` is not its table's."""
        return {"pixel_values": self.preprocess(image, size), **self._options(size)}

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
            progress: Callable[[int, int], None] | None = None, **_: object) -> AttentionResult:
        """Attention of the model on one image.

        Args:
            image_size: side in pixels of a square input (a multiple of the patch size); default the processor's.
            progress: called with ``(layers done, layers)`` after each layer; it may raise to stop the run.
        Returns:
            AttentionResult over the prefix tokens and ``rows * cols`` patches (its heads recomputed from the
            capture, or stored: see the module docstring), ``grid == (rows, cols)``, ``special`` True on the prefix;
            ``extras`` (:class:`ImageExtras`): ``input_size``, the ``(height, width)`` the model read.
        Raises:
            ValueError: no image or an unusable one (:func:`attnviz.load_image`), a bad ``image_size``, or, for a
                model that stores its weights, a size whose weights would pass the bound.
        """
        if image is None:
            raise ValueError("No image given: upload a picture or choose an example.")
        size = self.size if image_size is None else self._check_size(image_size)
        grid = self._grid(size)
        if size != self.size and not self.resizable:
            raise ValueError(f"{self.name} reads only {self.size[1]}x{self.size[0]} px pictures.")
        self._check_stored(size)
        source = self.forward_at(as_rgb(image), size, progress)
        tokens = list(self.prefix) + [f"p{r},{c}" for r in range(grid[0]) for c in range(grid[1])]
        return AttentionResult(source, tokens=tokens, model=self.name, kind="image", grid=grid,
                               special=np.arange(len(tokens)) < len(self.prefix), extras=ImageExtras(input_size=size))

    @property
    def image_sizes(self) -> tuple[int, ...]:
        """The sides (px) the Image page offers: the processor's (the default, first) up to
        :data:`MAX_SIDE_PATCHES` patches, in steps of the patch, for a model that reads square pictures and
        interpolates its position table (a storing one: the sizes within its bound); () for the others."""
        if not self.resizable or self.size[0] != self.size[1]:
            return ()
        return tuple(s for s in range(self.size[0], MAX_SIDE_PATCHES * self.patch + 1, self.patch)
                     if self._fits((s, s)))

    def _fits(self, size: tuple[int, int]) -> bool:
        """Whether a run at ``size`` keeps within the bound of a storing model (a capturing one always does)."""
        return self.reader.captures or self._stored_bytes(
            self.positions({"pixel_values": torch.empty(0, 0, *size)})) <= STORED_MAX_BYTES

    def _stored_bytes(self, n: int) -> int:
        """Bytes of a storing model's weights of ``n`` positions, every layer and head."""
        return 4 * self.reader.plan.n_layers * self.reader.plan.n_heads * n * n

    def _check_stored(self, size: tuple[int, int]) -> None:
        """A model that stores its weights refuses, in pixels, a size whose weights would pass the bound."""
        if self._fits(size):
            return
        n = self.positions({"pixel_values": torch.empty(0, 0, *size)})
        side = next((s for s in range(MAX_SIDE_PATCHES, 0, -1)
                     if self._stored_bytes(len(self.prefix) + s * s) <= STORED_MAX_BYTES), 1)
        raise ValueError(f"{self.name} keeps every attention weight (its attention cannot be recomputed exactly from "
                         f"its parts): at {size[1]}x{size[0]} px its {n} positions would take "
                         f"{self._stored_bytes(n) / 2**30:.2f} GiB, over the {STORED_MAX_BYTES / 2**30:.0f} GiB bound. "
                         f"Use an image_size of at most {side * self.patch} px.")

    def _check_size(self, image_size: object) -> tuple[int, int]:
        top = MAX_SIDE_PATCHES * self.patch
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size % self.patch \
                or not 2 * self.patch <= image_size <= top:
            raise ValueError(f"image_size must be a multiple of {self.patch} from {2 * self.patch} to {top} px, "
                             f"got {image_size!r}.")
        return image_size, image_size

    def forward_at(self, image: Image.Image, size: tuple[int, int],
                   progress: Callable[[int, int], None] | None = None) -> HeadSource:
        """The head source (prefix tokens, then the patches) of an RGB picture read at ``size``."""
        inputs = self._inputs(image, size)
        (source,) = self.reader(inputs, self.positions(inputs), traced=False, progress=progress)
        return source

    def forward(self, image: Image.Image, size: int | None = None,
                progress: Callable[[int, int], None] | None = None) -> tuple[HeadSource, ImageExtras, tuple[int, int]]:
        size = self.size if size is None else (size, size)
        return self.forward_at(image, size, progress), ImageExtras(input_size=size), self._grid(size)


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
