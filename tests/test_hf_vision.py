"""Local Hugging Face vision directories (tiny random weights built here): transformers' eager attention on the
pixels of the directory's own image processor, the patch grid, and the tokens before the patches labelled."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import attnviz
from attnviz.models.hf_families import FAMILIES, supported
from tests.hf_dirs import VISION

PREFIX = {"deit": ["[CLS]", "[DIST]"], "dinov2_with_registers": ["[CLS]", "[REG0]", "[REG1]"]}


@pytest.fixture(scope="module")
def picture() -> Image.Image:
    """A 70 x 50 px picture (not the processors' 40 x 48 and not square): its whole is resized, not cropped."""
    return Image.fromarray((np.random.default_rng(0).random((50, 70, 3)) * 255).astype(np.uint8))


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
    interpolate = {} if model_type.startswith("dinov2") else {"interpolate_pos_encoding": True}
    pixels = m.processor(images=picture, return_tensors="pt", do_center_crop=False,
                         size={"height": 48, "width": 40})["pixel_values"]
    np.testing.assert_allclose(r.weights, reference(model_type, directory, pixels, **interpolate), rtol=0, atol=1e-6)


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


def test_distillation_and_register_tokens_are_labelled_in_the_table():
    assert FAMILIES["deit"].prefix == ("[CLS]", "[DIST]")
    assert "register" in FAMILIES["dinov2_with_registers"].note
