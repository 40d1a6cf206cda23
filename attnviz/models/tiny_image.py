"""attnviz's own tiny ViT classifiers (vit-fashion, shapes-vit), loaded from ``assets/models``.

Each model is ``{name}.safetensors`` (weights of :class:`attnviz.models.tiny_vit.TinyViT`) plus ``{name}.json``
(``config``, ``classes``, normalisation ``mean``/``std``, ``test_accuracy``, ...), written by ``attnviz.train``.
What attention is made of (queries, keys, values) is recorded by a :class:`PartsRecorder` registered once at load
time (thread-safe); heads are recomputed from it on demand.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from safetensors.torch import load_file

from attnviz.extras import ImageExtras
from attnviz.images import Source, as_rgb
from attnviz.models.recorder import AttentionRecorder, PartsRecorder
from attnviz.models.relevance import Relevance, image_relevance
from attnviz.models.tiny_vit import TinyViT, TinyViTConfig
from attnviz.models.vision import ImageAttentionModel, to_tensor
from attnviz.result import HeadSource

ASSET_DIR = Path(__file__).resolve().parents[2] / "assets" / "models"
TRAIN_COMMANDS = {"vit-fashion": "python -m attnviz.train.vit_fashion", "shapes-vit": "python -m attnviz.train.shapes"}


class TinyViTImageModel(ImageAttentionModel):
    """A :class:`TinyViT` classifier: ``run`` returns its attention and, in ``extras`` (:class:`ImageExtras`), its
    ``prediction`` (class name) and ``probabilities`` (class name -> probability, in class order)."""

    def __init__(self, name: str, model: TinyViT, meta: dict, description: str = "") -> None:
        self.name = name
        self.model = model.eval()
        self.meta = meta
        self.cfg = model.cfg
        self.classes: list[str] = list(meta["classes"])
        self.n_layers, self.n_heads, self.grid = self.cfg.depth, self.cfg.heads, self.cfg.grid
        self.image_size = self.cfg.image_size
        self.description = description
        self.parts = PartsRecorder(model)  # what each head is made of, for runs
        self.recorder = AttentionRecorder(model)  # the weights themselves, in the graph for gradient relevance

    def inputs(self, image: Image.Image | Source) -> tuple[torch.Tensor, bool]:
        """The model's input for a picture: float32 ``[1, channels, size, size]``, normalised; and whether the
        picture was inverted first (``vit-fashion`` learnt light objects on black)."""
        image = as_rgb(image)
        inverted = bool(self.meta.get("invert_light_background")) and light_background(image)
        if inverted:
            image = ImageOps.invert(image.convert("RGB"))
        return to_tensor(image, self.cfg.image_size, self.meta["mean"], self.meta["std"], self.cfg.channels), inverted

    def relevance(self, image: Image.Image | Source | None = None, target: int | str | None = None) -> Relevance:
        """Gradient-weighted relevance of each patch for ``target`` (class index or name; ``None``: the predicted
        class), Chefer et al. 2021: see :func:`attnviz.models.relevance.image_relevance`."""
        if image is None:
            raise ValueError("No image given: upload a picture or choose an example.")
        return image_relevance(self, as_rgb(image), target)

    @torch.inference_mode()
    def forward(self, image: Image.Image, size: int, progress=None) -> tuple[HeadSource, ImageExtras, tuple[int, int]]:
        cfg = self.cfg
        x, inverted = self.inputs(image)
        with self.parts.record() as store:
            logits = self.model(x)  # [1, n_classes]
        if len(store) != cfg.depth:
            raise RuntimeError(f"recorded {len(store)} attention maps for {cfg.depth} layers")
        probs = torch.softmax(logits[0], -1).tolist()
        extras = ImageExtras(input_size=size, prediction=self.classes[int(np.argmax(probs))],
                             probabilities=dict(zip(self.classes, probs, strict=True)), inverted=inverted)
        return self.parts.heads(store), extras, self.grid


def light_background(image: Image.Image, threshold: float = 0.5) -> bool:
    """Whether the picture's border is mostly light (mean grey of the outermost pixels above ``threshold``)."""
    a = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.BILINEAR), np.float32) / 255.0
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    return float(border.mean()) > threshold


def load_tiny(name: str, description: str = "", directory: Path = ASSET_DIR) -> TinyViTImageModel:
    """Load a shipped tiny ViT by name.

    Raises:
        ValueError: its files are missing or do not fit the architecture (the message says how to rebuild them).
    """
    weights, info = directory / f"{name}.safetensors", directory / f"{name}.json"
    rebuild = TRAIN_COMMANDS.get(name, "the training script in attnviz/train")
    if not (weights.is_file() and info.is_file()):
        raise ValueError(f"The weights of {name!r} are missing ({weights}); rebuild them with: {rebuild}")
    try:
        meta = json.loads(info.read_text(encoding="utf-8"))
        model = TinyViT(TinyViTConfig(**meta["config"]))
        model.load_state_dict(load_file(str(weights)), strict=True)
    except (OSError, KeyError, TypeError, ValueError, RuntimeError, json.JSONDecodeError) as e:
        raise ValueError(f"The weights of {name!r} in {directory} cannot be loaded ({e}); rebuild them with: "
                         f"{rebuild}") from e
    return TinyViTImageModel(name, model, meta, description)
