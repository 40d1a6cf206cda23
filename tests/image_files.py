"""Image files for tests, made on the fly: good ones in every format and mode, and bad ones of every kind."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "BMP": "bmp", "GIF": "gif", "TIFF": "tiff"}


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def halves(size=(64, 48), left=(255, 0, 0), right=(0, 0, 255)) -> Image.Image:
    """An RGB picture: left half ``left``, right half ``right``."""
    w, h = size
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 2] = left
    a[:, w // 2:] = right
    return Image.fromarray(a, "RGB")


def raw_png(width: int, height: int, idat: bytes | None = None) -> bytes:
    """A grey 8-bit PNG with this header; its pixel data compresses all-zero rows (a decompression bomb when
    large) unless ``idat`` is given (header-only files for sizes too big to build)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    if idat is None:
        comp = zlib.compressobj(9)
        row = b"\x00" * (width + 1)
        idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def truncated_jpeg() -> bytes:
    rng = np.random.default_rng(0)
    data = encode(Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)), "JPEG", quality=90)
    return data[: len(data) // 2]


def animated_gif() -> bytes:
    """Two frames: red, then blue."""
    frames = [Image.new("RGB", (40, 30), c) for c in ((255, 0, 0), (0, 0, 255))]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def exif_rotated_jpeg(orientation: int = 6) -> bytes:
    """A 64x48 JPEG, red left / blue right, whose EXIF says "rotate 90 degrees clockwise to display" (6, or another
    ``orientation``)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(halves(), "JPEG", quality=95, exif=exif.tobytes())


def bad_files() -> dict[str, tuple[bytes, str, str]]:
    """name -> (file bytes, file name, a word the error message must contain)."""
    return {
        "zero-byte": (b"", "empty.png", "empty"),
        "text named .png": (b"This is not a picture, it is a note.\n" * 20, "note.png", "not an image"),
        "truncated jpeg": (truncated_jpeg(), "cut.jpg", "damaged"),
        "20000x20000": (raw_png(20000, 20000, idat=b""), "huge.png", "megapixels"),
        "decompression bomb 64 MP": (raw_png(8000, 8000), "bomb.png", "megapixels"),
        "1x1": (encode(Image.new("RGB", (1, 1), "white"), "PNG"), "dot.png", "at least 16"),
        "oversized file": (b"\x89PNG" + b"\0" * (26 * 2**20), "big.png", "25 MB"),
    }
