"""The Text page in a real browser: submit a sentence, see all heads, the focused head and the per-layer view,
download the grid."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.browser import wait_idle, wait_image_loaded

pytestmark = pytest.mark.browser


def test_text_page_runs_and_downloads(app_server, browser_page, artifacts):
    page = browser_page
    page.goto(f"{app_server}/Text", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Text attention").wait_for(timeout=60_000)
    wait_idle(page)
    area = page.get_by_label("Text", exact=True)
    area.fill("A zebra grazes near the quiet river at dawn.")
    page.get_by_role("button", name="Run").click()
    # The focused head's axes carry the new tokens once the run is shown.
    page.locator(".xtick text", has_text="zebra").first.wait_for(timeout=60_000)
    wait_idle(page)
    grid = page.locator('[data-testid="stImage"] img').first
    grid.wait_for(state="visible")
    wait_image_loaded(page, grid)
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 1  # only the open tab's view is drawn
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(artifacts / "text_page.png"), full_page=True)

    page.get_by_role("tab", name="Per layer").click()
    page.get_by_role("heading", name="Layer 0: mean over heads").wait_for(timeout=60_000)
    page.locator('[data-testid="stPlotlyChart"] .xtick text', has_text="zebra").first.wait_for(timeout=60_000)
    wait_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0

    with page.expect_download() as dl:
        page.get_by_role("button", name="All heads (PNG)").click()
    data = open(dl.value.path(), "rb").read()
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG" and img.width > 6 * 64 and img.height > 3 * 64
