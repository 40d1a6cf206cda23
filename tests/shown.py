"""What a Markdown element shows: AppTest gives an element's Markdown source, where the pages backslash-escape
text that must show literally (:func:`attnviz.ui.md_literal`)."""
from __future__ import annotations

import re


def plain(markdown: str) -> str:
    """``markdown`` without its backslash escapes (``input\\: x`` -> ``input: x``)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)
