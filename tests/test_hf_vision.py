"""Local Hugging Face vision directories (tiny random weights built here): transformers' eager attention on the
pixels of the directory's own image processor, the patch grid, and the tokens before the patches labelled."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import attnviz
from attnviz.models import hf_vision, reader
from attnviz.models.heads import CapturedHeads
from attnviz.models.hf_families import FAMILIES, supported
from attnviz.result import StoredWeights, block_max
from tests.hf_dirs import VISION

PREFIX = {"deit": ["[CLS]", "[DIST]"], "dinov2_with_registers": ["[CLS]", "[REG0]", "[REG1]"]}
STORED = {"beit"}
"""Families whose attention is not recomputed from a capture: BEiT adds a relative position bias per head (passed
as its attention mask), which the load-time probe finds the capture does not reproduce."""
CAPTURED = [t for t in VISION if t not in STORED]


@pytest.fixture(scope="module")
def picture() -> Image.Image:
    """A 70 x 50 px picture (not the processors' 40 x 48 and not square): its whole is resized, not cropped."""
    return Image.fromarray((np.random.default_rng(0).random((50, 70, 3)) * 255).astype(np.uint8))


def options(model_type: str) -> dict[str, bool]:
    """What the reference forward needs at a size that is not its position table's (DINOv2 always interpolates)."""
    return {} if model_type.startswith("dinov2") else {"interpolate_pos_encoding": True}


def pixels_at(m, picture: Image.Image, height: int, width: int) -> torch.Tensor:
    return m.processor(images=picture, return_tensors="pt", do_center_crop=False,
                       size={"height": height, "width": width})["pixel_values"]


def reference(model_type: str, directory: Path, pixels: torch.Tensor, **options) -> np.ndarray:
    """``[layer, head, query, key]`` of the family's model loaded separately by transformers (eager)."""
    import transformers

    cls = getattr(transformers, "CLIPVisionModel" if model_type.startswith("clip") else "AutoModel")
    model = cls.from_pretrained(directory, attn_implementation="eager").eval()
    with torch.inference_mode():
        out = model(pixel_values=pixels, output_attentions=True, **options)
    return torch.stack(out.attentions)[:, 0].numpy()


def test_every_vision_family_has_a_tiny_directory():
    assert set(VISION) == set(supported("image"))


@pytest.mark.parametrize("model_type", list(VISION))
def test_vision_family_gives_eager_weights_on_its_processors_pixels(vision_dir, picture, model_type):
    directory = vision_dir(model_type)
    m = attnviz.load_model(directory)
    r = m.run(image=picture)
    prefix = PREFIX.get(model_type, ["[CLS]"])
    assert m.kind == r.kind == "image" and r.grid == (6, 5) and r.extras.input_hw == (48, 40)
    assert r.tokens[:len(prefix)] == prefix and r.tokens[len(prefix)] == "p0,0" and r.tokens[-1] == "p5,4"
    assert r.special.tolist() == [True] * len(prefix) + [False] * 30
    want = reference(model_type, directory, pixels_at(m, picture, 48, 40), **options(model_type))
    np.testing.assert_allclose(r.weights, want, rtol=0, atol=1e-6)
    assert m.reader.captures == (model_type not in STORED)
    assert isinstance(r.source, StoredWeights if model_type in STORED else CapturedHeads)


@pytest.mark.parametrize("model_type", CAPTURED)
def test_captured_family_at_its_largest_size_holds_a_fraction_and_reads_eager_heads(vision_dir, picture, model_type):
    """At 37 x 37 patches (the largest image_size) a captured result holds queries and keys, not the weights;
    every head, a row and the overview equal transformers' eager weights."""
    directory = vision_dir(model_type)
    m = attnviz.load_model(directory)
    side = 37 * m.patch
    r = m.run(image=picture, image_size=side)
    n = len(PREFIX.get(model_type, ["[CLS]"])) + 37 * 37
    assert r.grid == (37, 37) and r.n_tokens == n and isinstance(r.source, CapturedHeads)
    print(f"{model_type} at {side} px, {n} positions: holds {r.nbytes / 2**20:.2f} MiB, "
          f"full weights {r.weights_nbytes / 2**20:.1f} MiB")
    assert r.nbytes < r.weights_nbytes / 20
    want = reference(model_type, directory, pixels_at(m, picture, side, side), **options(model_type))
    for layer in range(r.n_layers):
        for head in range(r.n_heads):
            np.testing.assert_allclose(r.head(layer, head), want[layer, head], rtol=0, atol=1e-6)
    np.testing.assert_allclose(r.row(1, 2, n // 2), want[1, 2, n // 2], rtol=0, atol=1e-6)
    np.testing.assert_allclose(r.overview(96), block_max(want, 96), rtol=0, atol=1e-6)


def test_a_storing_family_keeps_its_weights_bounded(vision_dir, picture, monkeypatch):
    """BEiT stores its weights (the full tensor, eager's numbers); a size whose weights would pass the bound is a
    ValueError saying so, not a run."""
    directory = vision_dir("beit")
    m = attnviz.load_model(directory)
    r = m.run(image=picture, image_size=96)
    assert isinstance(r.source, StoredWeights) and r.source.weights.nbytes == r.weights_nbytes
    want = reference("beit", directory, pixels_at(m, picture, 96, 96), interpolate_pos_encoding=True)
    np.testing.assert_allclose(r.weights, want, rtol=0, atol=1e-6)
    monkeypatch.setattr(hf_vision, "STORED_MAX_BYTES", r.weights_nbytes - 1)
    with pytest.raises(ValueError, match="keeps every attention weight") as refused:
        m.run(image=picture, image_size=96)
    top = int(re.search(r"image_size of at most (\d+) px", str(refused.value))[1])
    assert top == 88 and m.run(image=picture, image_size=top).grid == (11, 11)  # the largest size under the bound
    monkeypatch.setattr(reader, "STORED_MAX_BYTES", r.weights_nbytes - 1)  # the reader's own bound, behind it
    monkeypatch.setattr(hf_vision, "STORED_MAX_BYTES", r.weights_nbytes)
    with pytest.raises(ValueError, match="over the 0 GiB bound"):
        m.run(image=picture, image_size=96)


def test_pixels_are_the_processors_resize_and_normalisation_of_the_whole_picture(vision_dir, picture):
    """CLIP's processor: bicubic resize (its resample) of the whole picture to its crop size, CLIP's mean and std."""
    m = attnviz.load_model(vision_dir("clip"))
    p = m.processor
    assert type(p).__name__ == "CLIPImageProcessorPil" and p.do_center_crop  # it would crop: attnviz resizes
    x = np.asarray(picture.resize((40, 48), Image.Resampling(p.resample)), np.float32) / 255
    want = (x - np.asarray(p.image_mean, np.float32)) / np.asarray(p.image_std, np.float32)  # [h, w, 3]
    got = m.preprocess(picture, (48, 40))[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_image_size_reads_the_picture_larger(vision_dir, picture):
    m = attnviz.load_model(vision_dir("vit"))
    r = m.run(image=picture, image_size=64)
    assert r.grid == (8, 8) and r.n_tokens == 65 and r.extras.input_hw == (64, 64)
    np.testing.assert_allclose(r.weights.sum(-1), 1, atol=1e-5)
    for bad in (63, 8, 10_000, "64", True):
        with pytest.raises(ValueError, match="image_size must be a multiple of 8"):
            m.run(image=picture, image_size=bad)


def test_image_sizes_offered_are_square_from_the_processors_up_and_within_a_storing_bound(vision_dir, picture,
                                                                                             monkeypatch):
    """A model that interpolates its position table and reads square pictures offers the processor's side (first)
    up to 37 patches, in steps of the patch, each of which runs; a non-square processor offers none; a storing
    model only the sizes within its bound."""
    m = attnviz.load_model(vision_dir("vit"))
    assert m.size == (48, 40) and m.image_sizes == ()  # the tiny processors feed 48 x 40 px
    monkeypatch.setattr(m, "size", (48, 48))
    assert m.image_sizes == tuple(range(48, 37 * 8 + 1, 8))
    assert m.run(image=picture, image_size=m.image_sizes[2]).grid == (8, 8)
    beit = attnviz.load_model(vision_dir("beit"))
    monkeypatch.setattr(beit, "size", (48, 48))
    bound = beit.run(image=picture, image_size=96).weights_nbytes - 1
    monkeypatch.setattr(hf_vision, "STORED_MAX_BYTES", bound)
    assert beit.image_sizes == tuple(range(48, 89, 8))  # 88 px is the largest under the bound (as refused above)


def test_distillation_and_register_tokens_are_labelled_in_the_table():
    assert FAMILIES["deit"].prefix == ("[CLS]", "[DIST]")
    assert "register" in FAMILIES["dinov2_with_registers"].note


def test_a_captured_vision_result_exports(vision_dir, picture, tmp_path):
    """export_result of a captured ViT run: weights.npy is every head, the grid and each head's PNG are written."""
    from attnviz.export import export_result

    r = attnviz.load_model(vision_dir("vit")).run(image=picture, image_size=64)
    written = export_result(r, tmp_path)
    assert isinstance(r.source, CapturedHeads)
    np.testing.assert_array_equal(np.load(tmp_path / "weights.npy"), r.weights)
    assert {p.name for p in written} == {"weights.npy", "tokens.json", "grid.png"} | {
        f"layer{layer}_head{head}.png" for layer in range(r.n_layers) for head in range(r.n_heads)}
