"""The Cross-attention page in a real browser: the alignment, and a screenshot in tests/artifacts/."""
from __future__ import annotations

import pytest

from tests.browser import full_page_shot, wait_idle

pytestmark = pytest.mark.browser


def test_cross_attention_page_shows_the_alignment(app_server, browser_page, artifacts):
    page = browser_page
    page.goto(f"{app_server}/Cross_Attention", wait_until="domcontentloaded")
    page.get_by_text("2026-11-21", exact=True).wait_for(timeout=60_000)
    page.locator('[data-testid="stPlotlyChart"] .xtick text').first.wait_for(timeout=60_000)
    wait_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    full_page_shot(page, artifacts / "cross_attention_page.png")
