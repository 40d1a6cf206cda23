"""Readable labels for tokens: byte-level BPE (GPT-2, Llama 3, SmolLM2...), SentencePiece and WordPiece.

A byte-level BPE token is a string of stand-in characters, one per byte: ``Ġ`` is a space, ``Ċ`` a newline and
``Ã©`` the two bytes of ``é``. A label decodes those bytes back to text. A token that holds only part of a
character (an emoji is often split in two tokens) shows its bytes escaped, e.g. ``\\xf0\\x9f``. A SentencePiece
token's ``▁`` (start of a word) is a space, and its byte-fallback pieces (``<0x0A>``) the byte they stand for.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

_WHITESPACE = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


@lru_cache(maxsize=1)
def _byte_of_char() -> dict[str, int]:
    """Inverse of GPT-2's ``bytes_to_unicode``: stand-in character -> byte value."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    chars = {b: chr(b) for b in printable}
    n = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + n)
            n += 1
    return {c: b for b, c in chars.items()}


def is_byte_level(tokenizer: object) -> bool:
    """True when a (fast) tokenizer pre-tokenizes or decodes at the byte level."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return False
    return "ByteLevel" in repr(backend.decoder) or "ByteLevel" in repr(backend.pre_tokenizer)


def byte_level_label(token: str) -> str:
    """The text a byte-level token stands for, with newlines and tabs written ``\\n``, ``\\t``.

    Tokens with characters outside the byte alphabet (added special tokens such as ``<|im_start|>`` are
    inside it; others may not be) are returned unchanged.
    """
    table = _byte_of_char()
    if not token or any(c not in table for c in token):
        return token
    text = bytes(table[c] for c in token).decode("utf-8", errors="backslashreplace")
    return "".join(_WHITESPACE.get(c, c) for c in text)


_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


def piece_label(token: str) -> str:
    """A WordPiece or SentencePiece token as a label: ``▁`` (a word's start) as a space; a byte-fallback piece
    ``<0x0A>`` as the byte it stands for (``\\n``, a printable ASCII character, else escaped like ``\\xe2``)."""
    m = _BYTE_PIECE.match(token)
    if m is None:
        return token.replace("▁", " ").replace("Ġ", " ").replace("Ċ", "\\n")
    b = int(m[1], 16)
    char = chr(b)
    if char in _WHITESPACE:
        return _WHITESPACE[char]
    return char if 0x20 <= b < 0x7F else f"\\x{b:02x}"


def labeller(tokenizer: object) -> Callable[[list[int]], list[str]]:
    """The labels of a tokenizer's ids: byte-level BPE tokens decoded (:func:`byte_level_label`), others by
    :func:`piece_label`."""
    label = byte_level_label if is_byte_level(tokenizer) else piece_label

    def labels(ids: list[int]) -> list[str]:
        return [label(t) for t in tokenizer.convert_ids_to_tokens(ids)]

    return labels
