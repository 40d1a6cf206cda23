"""The Corpus page in a real browser (Debian Chromium): a corpus run's heatmap, a click on a cell that focuses that
head (its top texts follow), the heatmap's PNG download."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser import full_page_shot, wait_idle
from tests.corpus_texts import write_result

pytestmark = pytest.mark.browser


def test_corpus_page_click_a_head_and_download(app_server, browser_page, artifacts, corpus_root, minilm):
    write_result(corpus_root / "demo", minilm)
    page = browser_page
    page.goto(f"{app_server}/Corpus?corpus_stat=Share+to+the+previous+token", wait_until="domcontentloaded")
    page.get_by_role("heading", name="L0 H0: Share to the previous token").wait_for(timeout=60_000)
    wait_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0

    # Click the cell of layer 2, head 7 (6 layers x 12 heads): that head is focused.
    chosen = page.get_by_role("heading", name="L2 H7: Share to the previous token")
    cells = page.locator(".st-key-corpus_fig .nsewdrag").first
    for attempt in range(3):  # a click that lands while Plotly redraws is lost: aim again
        wait_idle(page)
        cells.scroll_into_view_if_needed()
        box = cells.bounding_box()
        x, y = box["x"] + box["width"] * 7.5 / 12, box["y"] + box["height"] * 2.5 / 6
        page.mouse.move(x, y)
        page.wait_for_timeout(200)  # Plotly needs a hover before it reports a click on a point
        page.mouse.click(x, y)
        try:
            chosen.wait_for(timeout=15_000 * (attempt + 1))
            break
        except PlaywrightTimeout:
            continue
    chosen.wait_for(timeout=1_000)
    wait_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "corpus_layer=L2" in page.url and "corpus_head=H7" in page.url
    full_page_shot(page, artifacts / "corpus_page.png")

    with page.expect_download() as dl:
        page.get_by_role("button", name="Heatmap (PNG)").click()
    img = Image.open(io.BytesIO(Path(dl.value.path()).read_bytes()))
    assert img.format == "PNG" and img.width > 12 * 9 and img.height > 6 * 9
