"""Reading user images: any common format in, one RGB Pillow image out, or a ``ValueError`` that says what to do.

Limits (stated on the Image page too): at most :data:`MAX_BYTES` of file, :data:`MAX_PIXELS` pixels and at least
:data:`MIN_SIDE` pixels per side. Pillow's decompression-bomb guard stays on: ``Image.MAX_IMAGE_PIXELS`` is set to
:data:`MAX_PIXELS` and its warning is raised as an error while an image is opened; the pixel count is also checked
here, from the header, before any pixel is decoded.
"""
from __future__ import annotations

import io
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

MAX_BYTES = 25 * 1024 * 1024
"""Largest file read (25 MB, the same as the app's ``server.maxUploadSize``)."""
MAX_PIXELS = 50_000_000
"""Largest image, in pixels (50 megapixels), checked before decoding."""
MIN_SIDE = 16
"""Smallest image side, in pixels."""
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")
"""Pillow decoders that may open user files (the JPEG one also opens multi-picture camera JPEGs, MPO)."""
LIMITS_TEXT = (f"PNG, JPEG, WebP, BMP, GIF (first frame) or TIFF; up to {MAX_BYTES // 2**20} MB and "
               f"{MAX_PIXELS // 10**6} megapixels, at least {MIN_SIDE}×{MIN_SIDE} pixels.")

Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # deliberate: Pillow's own bomb guard at our limit (error above 2x)

Source = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO


@dataclass
class LoadedImage:
    """An image as read from a user's file.

    Attributes:
        image: RGB image, EXIF orientation applied, transparency composited on white.
        format: the file's format as Pillow names it (``"PNG"``, ``"JPEG"``, ...).
        original_mode: Pillow mode of the file's pixels before conversion (``"I;16"``, ``"CMYK"``, ...).
        original_size: ``(width, height)`` as stored in the file, before EXIF rotation.
        frames: number of frames or pages (> 1 for animations and multi-page TIFF; only the first is used).
        notices: sentences for the person (first frame used, rotated, transparency flattened, ...).
    """

    image: Image.Image
    format: str
    original_mode: str
    original_size: tuple[int, int]
    frames: int = 1
    notices: list[str] = field(default_factory=list)


def load_image(source: Source) -> Image.Image:
    """Read an image file into an RGB Pillow image.

    Args:
        source: a path, the file's bytes, or a binary file-like object (e.g. a Streamlit upload).
    Returns:
        RGB image, EXIF orientation applied; for animations the first frame.
    Raises:
        ValueError: empty, too large, too small, damaged or not an image, with a message saying what to do.
    """
    return load_image_info(source).image


def load_image_info(source: Source) -> LoadedImage:
    """Like :func:`load_image`, and also say what was done to the file (see :class:`LoadedImage`)."""
    data = _read_bytes(source)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data), formats=FORMATS)
        except UnidentifiedImageError:
            raise ValueError("This file is not an image that can be read (or its format is not supported). "
                             f"Upload {LIMITS_TEXT}") from None
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise ValueError(f"The image has too many pixels (limit {MAX_PIXELS // 10**6} megapixels). "
                             "Resize it and try again.") from None
        except Exception as e:  # hostile or broken files make decoders raise all kinds of errors
            log.info("cannot open image: %r", e)
            raise ValueError(f"The image file is damaged and cannot be opened ({e}). Save it again or "
                             "try another file.") from None
    fmt = im.format or "?"
    width, height = im.size
    _check_size(width, height)
    frames = _frame_count(im)
    mode = im.mode
    notices = []
    if frames > 1:
        what = "pages" if fmt == "TIFF" else "frames"
        notices.append(f"The file has {frames} {what}; the first is shown.")
    try:
        im.seek(0)
        im.load()
        oriented = ImageOps.exif_transpose(im)
    except Image.DecompressionBombError:
        raise ValueError(f"The image has too many pixels (limit {MAX_PIXELS // 10**6} megapixels). "
                         "Resize it and try again.") from None
    except Exception as e:  # truncated data, broken EXIF, bad compression streams, ...
        log.info("cannot decode image: %r", e)
        raise ValueError(f"The image file is damaged or incomplete ({e}). Save it again or try another file.") \
            from None
    if _orientation(im) in range(2, 9):  # 1 is upright; other values are invalid and ignored by exif_transpose
        notices.append("The picture was turned upright as its EXIF orientation says.")
    rgb, note = to_rgb(oriented)
    if note:
        notices.append(note)
    return LoadedImage(rgb, fmt, mode, (width, height), frames, notices)


def as_rgb(image: Image.Image | Source) -> Image.Image:
    """An RGB image from a Pillow image (size-checked and converted) or from anything :func:`load_image` reads."""
    if isinstance(image, Image.Image):
        _check_size(*image.size)
        return image if image.mode == "RGB" else to_rgb(image)[0]
    return load_image(image)


def to_rgb(im: Image.Image) -> tuple[Image.Image, str | None]:
    """Convert any Pillow mode to 8-bit RGB.

    16-bit and 32-bit integer images are scaled (not clipped) to 8 bits, floats are stretched to their range,
    CMYK and images with an ICC profile are converted to sRGB, transparency is composited on white.

    Returns:
        (RGB image, a notice for the person or ``None``)
    """
    note = None
    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        im = Image.fromarray(_to_uint8(np.asarray(im), mode), "L")
        note = f"The {'16-bit' if mode.startswith('I;16') else mode + '-mode'} image was scaled to 8 bits."
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("LA", "La", "PA", "RGBa") or (im.mode != "RGBA" and "A" in im.getbands()):
        im = im.convert("RGBA")
    if im.mode == "RGBA":
        alpha = im.getchannel("A")
        if alpha.getextrema()[0] < 255:
            note = "Transparent areas are shown on white."
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, im).convert("RGB"), note
    im = _to_srgb(im)
    return (im if im.mode == "RGB" else im.convert("RGB")), note


def _to_uint8(a: np.ndarray, mode: str) -> np.ndarray:
    """Integer/float pixels ``[height, width]`` to uint8."""
    a = a.astype(np.float64)
    if mode.startswith("I;16"):
        scaled = a / 257.0
    elif mode == "I" and a.min() >= 0 and a.max() <= 255:
        scaled = a
    elif mode == "I" and a.min() >= 0 and a.max() <= 65535:
        scaled = a / 257.0
    elif mode == "F" and a.min() >= 0 and a.max() <= 1:
        scaled = a * 255.0
    else:  # unknown range: stretch what is there
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        scaled = (a - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(a)
    return np.clip(np.nan_to_num(scaled) + 0.5, 0, 255).astype(np.uint8)


def _to_srgb(im: Image.Image) -> Image.Image:
    """Apply an embedded ICC profile (CMYK print profiles, wide-gamut photos); unchanged when there is none."""
    icc = im.info.get("icc_profile")
    if not icc or im.mode not in ("RGB", "CMYK", "L"):
        return im
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError) as e:
        log.info("ICC profile not applied (%s); converting without it", e)
        return im


def _read_bytes(source: Source) -> bytes:
    """The file's bytes, refusing empty and oversized files before decoding anything."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise ValueError(f"No image file at {path}: check the path.")
        if path.stat().st_size > MAX_BYTES:
            raise ValueError(_too_big(path.stat().st_size))
        data = path.read_bytes()
    elif hasattr(source, "read"):
        if hasattr(source, "seek"):
            try:
                source.seek(0)
            except (OSError, ValueError):
                pass
        data = source.read(MAX_BYTES + 1)
        if not isinstance(data, bytes):
            raise ValueError("The file must be opened in binary mode ('rb').")
    else:
        raise ValueError(f"Expected a path, bytes or a binary file, got {type(source).__name__}.")
    if not data:
        raise ValueError("The file is empty (0 bytes). Choose an image file.")
    if len(data) > MAX_BYTES:
        raise ValueError(_too_big(len(data)))
    return data


def _too_big(n: int) -> str:
    return f"The file is {n / 2**20:.1f} MB; the limit is {MAX_BYTES // 2**20} MB. Use a smaller or compressed image."


def _check_size(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ValueError(f"The image is {width}×{height} pixels ({width * height / 1e6:.0f} megapixels); the limit "
                         f"is {MAX_PIXELS // 10**6} megapixels. Resize it and try again.")
    if min(width, height) < MIN_SIDE:
        raise ValueError(f"The image is {width}×{height} pixels, too small to show attention: it must be at "
                         f"least {MIN_SIDE}×{MIN_SIDE} pixels.")


def _frame_count(im: Image.Image) -> int:
    """Frames of an animation or pages of a TIFF; 1 for a still image (cheap: no frame is decoded)."""
    try:
        if not getattr(im, "is_animated", False):
            return 1
        return int(getattr(im, "n_frames", 2))
    except Exception:  # a broken later frame: the first one is still usable (or fails to load, with a message)
        return 2


def _orientation(im: Image.Image) -> int | None:
    try:
        return im.getexif().get(0x0112)
    except Exception:  # unreadable EXIF is not a reason to refuse the picture
        return None
