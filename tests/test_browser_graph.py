"""The head view (token-to-token line graph) in a real browser at the model's full 512 tokens: it renders, is
visible, draws one path per (head, opacity level) rather than one element per edge, and a click on a token
focuses it. A long input starts with the focused head only. And a copied link reopens the same view."""
from __future__ import annotations

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser import wait_idle

pytestmark = pytest.mark.browser

LONG_TEXT = " ".join(["The quick brown fox jumps over the lazy dog, and the dog sleeps on in the warm sun."] * 60)
GRAPH = ".st-key-graph_fig"


def graph_drawn(n_tokens: int, must_contain: str = "") -> str:
    """JS predicate: the head view is drawn (not stale) with ``n_tokens`` query markers and ``must_contain`` in
    its title."""
    return f"""() => {{
      const c = document.querySelector('{GRAPH}');
      if (!c || c.dataset.stale === 'true' || !c.querySelector('.main-svg')) return false;
      const traces = c.querySelectorAll('g.scatterlayer g.trace');
      const title = (c.querySelector('.gtitle') || {{}}).textContent || '';
      return traces.length > 2 && traces[0].querySelectorAll('path.point').length === {n_tokens}
        && title.includes({must_contain!r});
    }}"""


def test_head_view_at_512_tokens(app_server, browser_page, artifacts):
    page = browser_page
    page.set_viewport_size({"width": 1400, "height": 1800})
    page.goto(f"{app_server}/Text?text_view=Head+view", wait_until="domcontentloaded")  # view from the URL
    page.get_by_role("heading", name="Text attention").wait_for(timeout=60_000)
    page.wait_for_function(graph_drawn(16), timeout=60_000)  # the example sentence
    wait_idle(page)
    page.get_by_label("Text", exact=True).fill(LONG_TEXT)
    page.get_by_role("button", name="Run").click()
    page.wait_for_function(graph_drawn(512), timeout=60_000)
    wait_idle(page)

    graph = page.locator(GRAPH)
    assert graph.is_visible()
    assert page.get_by_text("512 tokens").count() >= 1
    assert page.locator('[data-testid="stException"]').count() == 0
    assert graph.locator("g.scatterlayer g.trace").count() == 3  # query and key tokens, the focused head's legend
    n_paths = graph.locator(".shapelayer path").count()
    assert 1 <= n_paths <= 8  # 512 x 3 edges of one head drawn as one path per opacity level, not 1536 elements
    graph.evaluate("el => el.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(artifacts / "head_view_512.png"))

    # Click the 5th query token's marker: only its lines remain, and the caption says so.
    point = graph.locator("g.scatterlayer g.trace").first.locator("path.point").nth(5)
    box = point.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.get_by_text("only query 5:").first.wait_for(timeout=30_000)
    page.wait_for_function(graph_drawn(512), timeout=30_000)
    wait_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0


def test_a_copied_link_reopens_the_same_view(app_server, browser, browser_page):
    """Model, text, layer, head and tab come from the URL; changing the layer rewrites it; the new link, opened in
    a fresh browser context (no session), shows the same view."""
    page = browser_page
    page.goto(f"{app_server}/Text?text_model=minilm&text=Cats+chase+mice%2C+dogs+chase+cats.&text_layer=L3"
              "&text_head=H7&text_view=Head+view", wait_until="domcontentloaded")
    page.wait_for_function(graph_drawn(10, "layer 3 "), timeout=60_000)  # [CLS] cats chase mice , dogs … [SEP]
    wait_idle(page)
    for _ in range(3):  # the list can close again when a rerun lands just after it opened
        page.locator(".st-key-text_layer button[aria-label=Open]").click()
        try:
            page.get_by_role("option", name="L4", exact=True).click(timeout=5_000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    page.wait_for_function(graph_drawn(10, "layer 4 "), timeout=60_000)
    page.wait_for_function("() => location.search.includes('text_layer=L4')", timeout=30_000)
    link = page.url
    assert "text_head=H7" in link and "text_view=Head+view" in link  # (the default model is left out)

    fresh = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    try:
        fresh.goto(link, wait_until="domcontentloaded")
        fresh.wait_for_function(graph_drawn(10, "layer 4 "), timeout=60_000)
        wait_idle(fresh)
        assert fresh.get_by_label("Text", exact=True).input_value() == "Cats chase mice, dogs chase cats."
        assert fresh.locator('[role=tab][aria-selected=true]').inner_text() == "Head view"
        assert fresh.get_by_text("minilm · 6 layers × 12 heads · 10 tokens").count() == 1
        selected = fresh.locator(".st-key-text_head input").input_value()
        assert selected == "H7", selected
    finally:
        fresh.context.close()
