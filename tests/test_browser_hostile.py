"""Hostile text in a real browser: markup typed by a user is shown literally and never runs."""
from __future__ import annotations

import pytest

from tests.browser import wait_idle

pytestmark = pytest.mark.browser

HOSTILE = '<img src=x onerror=alert(1)> <script>alert(2)</script> <b>bold</b> <a href="javascript:alert(3)">x</a>'


def run_hostile(page, app_server: str, text: str, shown: str) -> list[str]:
    """Run ``text`` on the Text page and wait for ``shown`` (a locator) to hold "script"; the dialogs that opened."""
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{app_server}/Text", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Text attention").wait_for(timeout=60_000)
    wait_idle(page)
    page.get_by_label("Text", exact=True).fill(text)
    page.get_by_role("button", name="Run").click()
    page.locator(shown, has_text="script").first.wait_for(state="attached", timeout=60_000)
    wait_idle(page)
    page.wait_for_timeout(500)
    return dialogs


def assert_inert(page, dialogs: list[str]) -> None:
    assert dialogs == []
    assert page.locator('img[src="x"]').count() == 0
    assert page.evaluate("() => [...document.scripts].some(s => s.textContent.includes('alert(2)'))") is False
    assert page.locator('a[href^="javascript:"]').count() == 0
    assert page.locator('[data-testid="stException"]').count() == 0


def test_markup_in_text_is_literal_and_inert(app_server, browser_page):
    page = browser_page
    assert_inert(page, run_hostile(page, app_server, HOSTILE, ".xtick text"))
    # the angle brackets are shown as text in the heatmap's tick labels
    ticks = page.locator(".xtick text").all_text_contents()
    assert any(t.endswith("<") for t in ticks) and any(t.endswith(">") for t in ticks)


def test_markup_in_a_long_text_is_literal_in_the_token_list(app_server, browser_page):
    """Above 256 tokens the focused head is an image and its tokens are listed as text under it."""
    page = browser_page
    listed = '.st-key-text_token_positions [data-testid="stText"]'
    assert_inert(page, run_hostile(page, app_server, " ".join([HOSTILE] * 10), listed))
    text = page.locator(listed).text_content()
    assert "·<" in text and "·>" in text and "·script" in text


def test_markup_in_an_uploaded_file_name_is_literal(app_server, browser_page):
    """The Image page names the uploaded file in a Markdown caption: its name must show as typed, not as bold text,
    a colour, maths or a link."""
    from tests.image_files import encode, halves

    page = browser_page
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{app_server}/Image", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Image attention").wait_for(timeout=120_000)
    wait_idle(page, 240_000)
    name = "**bold** _it_ :red[RED] $x^2$ [link](https:evil.example) <img src=x onerror=alert(1)>.png"
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        {"name": name, "mimeType": "image/png", "buffer": encode(halves((96, 64)), "PNG")})
    caption = page.locator('[data-testid="stCaptionContainer"]', has_text="(PNG, 96×64").first
    caption.wait_for(timeout=240_000)
    wait_idle(page, 240_000)
    assert caption.text_content().startswith(name + " (PNG, 96×64")
    assert caption.locator("a, .katex, em, [style*='color']").count() == 0
    assert caption.locator("strong").first.text_content() == name  # the name is bold as a whole, nothing inside it
    assert_inert(page, dialogs)
