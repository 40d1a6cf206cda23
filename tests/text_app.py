"""Driving the Text page through Streamlit's AppTest (shared by the Text page tests)."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

TIMEOUT = 180
ROOT = Path(__file__).resolve().parents[1]


def text_page(**params: str) -> AppTest:
    """The Text page, opened with URL query parameters ``params``."""
    at = AppTest.from_file(str(ROOT / "pages/1_Text.py"), default_timeout=TIMEOUT)
    for k, v in params.items():
        at.query_params[k] = v
    return at


def submit(at: AppTest, text: str, pair: str = "") -> AppTest:
    """Type ``text`` (and ``pair``) into the form and press Run."""
    at.text_area(key="text_input").set_value(text)
    at.text_input(key="text_pair").set_value(pair)
    next(b for b in at.button if b.label == "Run").click()
    return at.run()
