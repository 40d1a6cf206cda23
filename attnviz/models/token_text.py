"""Readable labels for byte-level BPE tokens (GPT-2, Llama 3, SmolLM2...).

A byte-level BPE token is a string of stand-in characters, one per byte: ``Ġ`` is a space, ``Ċ`` a newline and
``Ã©`` the two bytes of ``é``. A label decodes those bytes back to text. A token that holds only part of a
character (an emoji is often split in two tokens) shows its bytes escaped, e.g. ``\\xf0\\x9f``.
"""
from __future__ import annotations

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
