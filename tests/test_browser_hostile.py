"""Hostile text in a real browser: markup typed by a user is shown literally and never runs."""
from __future__ import annotations

import pytest

from tests.browser import wait_idle

pytestmark = pytest.mark.browser

HOSTILE = '<img src=x onerror=alert(1)> <script>alert(2)</script> <b>bold</b> <a href="javascript:alert(3)">x</a>'


def test_markup_in_text_is_literal_and_inert(app_server, browser_page):
    page = browser_page
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{app_server}/Text", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Text attention").wait_for(timeout=60_000)
    wait_idle(page)
    page.get_by_label("Text", exact=True).fill(HOSTILE)
    page.get_by_role("button", name="Run").click()
    page.locator(".xtick text", has_text="script").first.wait_for(timeout=60_000)
    wait_idle(page)
    page.wait_for_timeout(500)
    assert dialogs == []
    assert page.locator('img[src="x"]').count() == 0
    assert page.evaluate("() => [...document.scripts].some(s => s.textContent.includes('alert(2)'))") is False
    assert page.locator('a[href^="javascript:"]').count() == 0
    # the angle brackets are shown as text in the heatmap's tick labels
    ticks = page.locator(".xtick text").all_text_contents()
    assert any(t.endswith("<") for t in ticks) and any(t.endswith(">") for t in ticks)
    assert page.locator('[data-testid="stException"]').count() == 0
