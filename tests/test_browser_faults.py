"""Abuse of the Text page in a real browser: a tab closed in the middle of a 512-token run, and many fast reruns.
Afterwards the server is healthy and shows each person what they typed last."""
from __future__ import annotations

import urllib.request
import uuid

import pytest

from tests.browser import wait_idle

pytestmark = pytest.mark.browser

ANIMALS = ["cat", "dog", "horse", "zebra", "tiger", "lion", "eagle", "whale", "rabbit", "monkey"]
"""One WordPiece token each in MiniLM's vocabulary; the i-th fast run's text names the i-th animal."""
RUNNING = ("() => document.querySelector('[data-test-script-state=\"running\"]')"
           " || document.querySelector('[data-testid=\"stSpinner\"]')")
"""True while the page's script runs (Streamlit's run state; the spinner may show late or not at all)."""
WATCH_RUNNING = f"""() => {{
    window.__attnvizRunSeen = false;
    const seen = {RUNNING};
    new MutationObserver((_, observer) => {{
        if (seen()) {{ window.__attnvizRunSeen = true; observer.disconnect(); }}
    }}).observe(document.body, {{subtree: true, childList: true, attributes: true}});
}}"""
"""Records in ``window.__attnvizRunSeen`` that a run started: a run that lasts a few tenths of a second can begin
and end between two polls of ``wait_for_function``, but not unseen by a MutationObserver."""


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
    doomed.wait_for_function("() => window.__attnvizRunSeen", timeout=30_000)  # the run has started
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
