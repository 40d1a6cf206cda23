"""Checking and bounding user text before it reaches a tokenizer."""
from __future__ import annotations

import re

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

CHARS_PER_TOKEN_BOUND = 32
"""Text is cut to ``max_tokens * CHARS_PER_TOKEN_BOUND`` characters before tokenizing, so a 1 MB paste
costs milliseconds; a token rarely spans more characters, and the cut is reported as truncation."""


def check_text(text: object, what: str = "text") -> str:
    """Return ``text`` if it is a non-blank string; otherwise raise ``ValueError`` saying what to do.

    Lone surrogates (which cannot be encoded as UTF-8) are replaced with U+FFFD.
    """
    if text is None:
        raise ValueError(f"No {what} given: type a sentence to see its attention.")
    if not isinstance(text, str):
        raise ValueError(f"The {what} must be a string, got {type(text).__name__}.")
    if not text.strip():
        raise ValueError(f"The {what} is empty: type a sentence to see its attention.")
    return _LONE_SURROGATE.sub("\ufffd", text)


def bound_text(text: str, max_tokens: int) -> tuple[str, bool]:
    """Cut ``text`` to a length that cannot yield far more than ``max_tokens`` tokens.

    Returns:
        (text, was_cut)
    """
    limit = max_tokens * CHARS_PER_TOKEN_BOUND
    if len(text) <= limit:
        return text, False
    return text[:limit], True
