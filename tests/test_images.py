"""attnviz.load_image: every common format and pixel mode in, RGB out; every bad file out with a clear ValueError."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import attnviz
from attnviz.images import MAX_PIXELS, MIN_SIDE, load_image_info
from tests.image_files import FORMATS, animated_gif, bad_files, encode, exif_rotated_jpeg, halves

BAD = bad_files()


@pytest.mark.parametrize("case", list(BAD))
def test_bad_files_raise_value_error_with_advice(case, tmp_path):
    data, name, word = BAD[case]
    path = tmp_path / name
    path.write_bytes(data)
    for source in (path, str(path), data, io.BytesIO(data)):
        with pytest.raises(ValueError, match=word) as err:
            attnviz.load_image(source)
        assert len(str(err.value)) > 20  # a sentence, not a code


def test_limits_are_what_the_page_states():
    assert Image.MAX_IMAGE_PIXELS == MAX_PIXELS == 50_000_000  # Pillow's own guard kept on, at our limit
    with pytest.raises(ValueError, match=f"at least {MIN_SIDE}"):
        attnviz.load_image(encode(Image.new("RGB", (MIN_SIDE - 1, 400)), "PNG"))
    assert attnviz.load_image(encode(Image.new("RGB", (MIN_SIDE, MIN_SIDE)), "PNG")).size == (MIN_SIDE, MIN_SIDE)


def test_missing_path_and_wrong_type():
    with pytest.raises(ValueError, match="No image file"):
        attnviz.load_image("/nonexistent/cat.png")
    with pytest.raises(ValueError, match="Expected a path"):
        attnviz.load_image(12345)
    with pytest.raises(ValueError, match="binary mode"):
        attnviz.load_image(io.StringIO("text"))


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_loads_as_rgb(fmt, tmp_path):
    src = halves()
    data = encode(src, fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
    path = tmp_path / f"picture.{FORMATS[fmt]}"
    path.write_bytes(data)
    for source in (path, data, io.BytesIO(data)):
        im = attnviz.load_image(source)
        assert im.mode == "RGB" and im.size == src.size
        a = np.asarray(im, np.int16)
        assert np.abs(a[10, 5] - (255, 0, 0)).max() < 40 and np.abs(a[10, -5] - (0, 0, 255)).max() < 40


def test_animated_gif_uses_first_frame_and_says_so():
    info = load_image_info(animated_gif())
    assert info.frames == 2
    assert any("first" in n for n in info.notices)
    assert tuple(np.asarray(info.image)[5, 5]) == (255, 0, 0)
    assert attnviz.load_image(animated_gif()).size == (40, 30)


def test_exif_orientation_is_respected():
    info = load_image_info(exif_rotated_jpeg())
    im = info.image
    assert im.size == (48, 64)  # 64x48 stored, shown turned 90 degrees clockwise
    a = np.asarray(im, np.int16)
    assert a[5, 24, 0] > 200 and a[5, 24, 2] < 60  # the left (red) half is now on top
    assert a[-5, 24, 2] > 200 and a[-5, 24, 0] < 60
    assert any("EXIF" in n for n in info.notices)


def test_an_invalid_exif_orientation_is_ignored_without_a_notice():
    info = load_image_info(exif_rotated_jpeg(orientation=99))
    assert info.image.size == (64, 48) and not any("EXIF" in n for n in info.notices)


def test_grayscale_and_palette():
    g = Image.fromarray(np.tile(np.arange(0, 256, 4, dtype=np.uint8), (20, 1)), "L")
    a = np.asarray(attnviz.load_image(encode(g, "PNG")))
    assert (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all() and a[0, -1, 0] == 252
    p = halves().convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    assert tuple(np.asarray(attnviz.load_image(encode(p, "PNG")))[5, 5]) == (255, 0, 0)


def test_transparency_is_composited_on_white():
    a = np.zeros((20, 30, 4), np.uint8)
    a[:, :10] = (255, 0, 0, 255)  # opaque red
    a[:, 10:20] = (255, 0, 0, 128)  # half-transparent red
    a[:, 20:] = (0, 0, 0, 0)  # fully transparent
    info = load_image_info(encode(Image.fromarray(a, "RGBA"), "PNG"))
    out = np.asarray(info.image, np.int16)
    assert tuple(out[5, 5]) == (255, 0, 0)
    assert abs(out[5, 15, 1] - 127) <= 2 and out[5, 15, 0] == 255
    assert tuple(out[5, 25]) == (255, 255, 255)
    assert any("white" in n for n in info.notices)
    la = Image.fromarray(a[..., 3], "L").convert("LA")
    la.putalpha(Image.fromarray(a[..., 3]))
    assert attnviz.load_image(encode(la, "PNG")).mode == "RGB"
    pal = Image.new("P", (20, 20), 0)
    pal.putpalette([0, 255, 0] * 256)
    pal.info["transparency"] = 0
    assert tuple(np.asarray(attnviz.load_image(encode(pal, "PNG", transparency=0)))[3, 3]) == (255, 255, 255)


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF"])
def test_cmyk(fmt):
    a = np.zeros((20, 20, 4), np.uint8)
    a[:, 10:, 0] = 255  # right half pure cyan, left half no ink (white)
    out = np.asarray(attnviz.load_image(encode(Image.fromarray(a, "CMYK"), fmt)), np.int16)
    assert (out[5, 3] > 240).all()
    assert out[5, 15, 0] < 40 and out[5, 15, 1] > 200 and out[5, 15, 2] > 200


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_is_scaled_not_clipped(fmt):
    a = np.array([[0, 1000, 32768, 65535] * 5] * 20, np.uint16)
    im = Image.fromarray(a)
    assert im.mode.startswith("I;16")
    info = load_image_info(encode(im, fmt))
    out = np.asarray(info.image)[0, :4, 0]
    assert list(out) == [0, 4, 128, 255]
    assert info.original_mode.startswith("I")


def test_float_and_32_bit_modes():
    f = Image.fromarray(np.linspace(0, 1, 400, dtype=np.float32).reshape(20, 20), "F")
    out = np.asarray(attnviz.load_image(encode(f, "TIFF")))[..., 0]
    assert out.min() == 0 and out.max() == 255


def test_pil_image_input_is_checked_too(dinov2):
    with pytest.raises(ValueError, match="at least 16"):
        dinov2.run(image=Image.new("RGB", (8, 8)))
    with pytest.raises(ValueError, match="No image"):
        dinov2.run(image=None)
    r = dinov2.run(image=Image.new("LA", (40, 40)))  # any mode is converted
    assert r.weights.shape[0] == 12


@pytest.mark.parametrize("case", list(BAD))
def test_bad_files_via_model_run(case, dinov2):
    data, _, word = BAD[case]
    with pytest.raises(ValueError, match=word):
        dinov2.run(image=data)
    with pytest.raises(ValueError, match=word):
        dinov2.run(image=io.BytesIO(data))


@pytest.fixture(scope="module")
def dinov2():
    return attnviz.load_model("dinov2-small")


def test_damaged_files_never_escape_as_other_errors():
    """Seeded byte flips and truncations of valid files in every format: each is an RGB image or a ValueError."""
    rng = np.random.default_rng(0)
    sources = [encode(halves((40, 30)), f) for f in FORMATS] + [animated_gif(), exif_rotated_jpeg()]
    outcomes = {"image": 0, "refused": 0}
    for i in range(400):
        data = bytearray(sources[i % len(sources)])
        for _ in range(rng.integers(1, 6)):
            data[rng.integers(0, len(data))] = rng.integers(0, 256)
        if rng.random() < 0.3:
            data = data[: rng.integers(1, len(data))]
        try:
            assert attnviz.load_image(bytes(data)).mode == "RGB"
            outcomes["image"] += 1
        except ValueError:
            outcomes["refused"] += 1
    assert outcomes["image"] > 0 and outcomes["refused"] > 0
