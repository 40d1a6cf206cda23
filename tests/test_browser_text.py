"""The Text page in a real browser (Debian Chromium): a run, its views and downloads; the head view at 512
tokens; a copied link; a tab closed mid-run and fast reruns; markup typed by a user shown literally and inert."""
from __future__ import annotations

import io
import re
import urllib.request
import uuid

import pytest
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser import assert_inert, wait_idle, wait_image_loaded

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


def test_the_contributions_switch_redraws_the_grid(app_server, browser_page, artifacts):
    """One click on "Contributions": the all-heads grid is drawn again (another image), the focused head says
    contribution, and the page shows no exception."""
    page = browser_page
    page.goto(f"{app_server}/Text", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Text attention").wait_for(timeout=60_000)
    page.locator(".xtick text").first.wait_for(timeout=60_000)
    wait_idle(page)
    grid = page.locator('[data-testid="stImage"] img').first
    wait_image_loaded(page, grid)
    before = grid.get_attribute("src")
    page.locator(".st-key-text_contributions label").first.click()
    page.get_by_role("heading", name="All heads: contributions").wait_for(timeout=60_000)
    wait_idle(page)
    grid = page.locator('[data-testid="stImage"] img').first
    wait_image_loaded(page, grid)
    assert grid.get_attribute("src") != before
    page.locator('[data-testid="stPlotlyChart"] .gtitle', has_text="contribution").wait_for(timeout=60_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(artifacts / "text_page_contributions.png"), full_page=True)


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


ANIMALS = ["cat", "dog", "horse", "zebra", "tiger", "lion", "eagle", "whale", "rabbit", "monkey"]


RUNNING = ("() => document.querySelector('[data-test-script-state=\"running\"]')"
           " || document.querySelector('[data-testid=\"stSpinner\"]')")


WATCH_RUNNING = f"""() => {{
    window.__attnvizRunSeen = false;
    const seen = {RUNNING};
    new MutationObserver((_, observer) => {{
        if (seen()) {{ window.__attnvizRunSeen = true; observer.disconnect(); }}
    }}).observe(document.body, {{subtree: true, childList: true, attributes: true}});
}}"""


def healthy(base: str) -> bool:
    return urllib.request.urlopen(f"{base}/_stcore/health", timeout=10).read().strip() == b"ok"


def open_text_page(page, url: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("heading", name="Text attention").wait_for(timeout=60_000)
    wait_idle(page)


def run(page, text: str) -> None:
    page.get_by_label("Text", exact=True).fill(text)
    page.get_by_role("button", name="Run").click()


def tick_labels(page) -> list[str]:
    """The focused head's key tokens, without their ``{position}·`` prefix."""
    labels = page.locator('[data-testid="stPlotlyChart"] .xtick text').all_text_contents()
    return [label.split("·", 1)[-1] for label in labels]


def test_tab_closed_during_a_512_token_run(app_server, browser, browser_page):
    ctx = browser.new_context()
    doomed = ctx.new_page()
    open_text_page(doomed, f"{app_server}/Text")
    doomed.evaluate(WATCH_RUNNING)
    run(doomed, f"{uuid.uuid4().hex} " + "The quick brown fox jumps over the lazy dog. " * 60)  # > 512 tokens
    # the run has started (or, on a fast machine, already shown its 512 tokens: closing then still must not hurt)
    doomed.wait_for_function("() => window.__attnvizRunSeen || document.body.innerText.includes('512 tokens')",
                             timeout=30_000)
    ctx.close()  # the tab and its websocket go away mid-run

    assert healthy(app_server)
    page = browser_page
    open_text_page(page, f"{app_server}/Text")
    run(page, "A zebra grazes near the quiet river.")
    page.locator(".xtick text", has_text="zebra").first.wait_for(timeout=60_000)
    wait_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert healthy(app_server)


def test_fast_reruns_end_on_the_last_text(app_server, browser, browser_page):
    page = browser_page
    open_text_page(page, f"{app_server}/Text")
    for i, animal in enumerate(ANIMALS):  # no waiting: each Run interrupts the one before
        run(page, f"Run {i}: the {animal} sleeps.")
    last = ANIMALS[-1]
    page.locator(".xtick text", has_text=last).first.wait_for(timeout=60_000)
    wait_idle(page)
    labels = tick_labels(page)
    assert last in labels and not set(ANIMALS[:-1]) & set(labels)  # the last text only, nothing stale
    assert page.locator('[data-testid="stException"]').count() == 0
    assert healthy(app_server)

    fresh = browser.new_context().new_page()  # the shared link of the last run, in a new session
    try:
        open_text_page(fresh, page.url)
        fresh.locator(".xtick text", has_text=last).first.wait_for(timeout=60_000)
        wait_idle(fresh)
        assert tick_labels(fresh) == labels
        assert fresh.locator('[data-testid="stException"]').count() == 0
    finally:
        fresh.context.close()


def test_a_long_run_shows_its_layers_and_a_new_run_replaces_it(app_server, browser_page):
    """A SmolLM2 run of ~1,200 tokens shows a progress bar by layer (its spinner gone once the bar is there); a
    short text run while it goes replaces it: the page ends on the short text, with no bar left and no error."""
    page = browser_page
    open_text_page(page, f"{app_server}/Text?text_model=smollm2-135m")
    run(page, f"{uuid.uuid4().hex} " + "The quick brown fox jumps over the lazy dog. " * 120)
    bar = page.locator('[data-testid="stProgress"]', has_text=re.compile(r"layer \d+ of 30"))
    bar.wait_for(timeout=120_000)
    assert page.locator('[data-testid="stSpinner"]').count() == 0  # one animation at a time
    run(page, "A zebra grazes near the quiet river.")
    page.locator(".xtick text", has_text="zebra").first.wait_for(timeout=60_000)
    wait_idle(page)
    assert page.locator('[data-testid="stProgress"]').count() == 0
    assert page.get_by_text(re.compile(r"smollm2-135m.{0,10}30 layers × 9 heads · ([0-9,]+) tokens")).count() == 1
    assert "The quick brown" not in " ".join(tick_labels(page))
    assert page.locator('[data-testid="stException"]').count() == 0
    assert healthy(app_server)


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


def test_a_local_model_runs_and_a_path_in_the_link_opens_nothing(app_server, browser_page, artifacts, text_dir):
    """A folder of the server's models folder, chosen by a link, runs in the browser; a link naming a directory's
    path instead shows the default model."""
    page = browser_page
    page.goto(f"{app_server}/Text?text_model=my-gpt2&text=A+small+local+model.", wait_until="domcontentloaded")
    page.get_by_text("2 layers × 4 heads", exact=False).first.wait_for(timeout=120_000)
    wait_idle(page)
    grid = page.locator('[data-testid="stImage"] img').first
    wait_image_loaded(page, grid)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("my-gpt2: all 8 heads").count() == 1
    page.screenshot(path=str(artifacts / "text_page_local_model.png"), full_page=True)

    page.goto(f"{app_server}/Text?text_model={urllib.request.quote(str(text_dir('bert')), safe='')}",
              wait_until="domcontentloaded")
    page.get_by_text("minilm: all 72 heads").wait_for(timeout=120_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlert"]').count() == 0
