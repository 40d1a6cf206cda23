"""The Mechanisms page in a real browser: the formulas render as KaTeX (no KaTeX errors), the classic example's
dot weights read 2.320e-16 and 1.523e-08 (not 0), and a screenshot in tests/artifacts/ for a person to look at."""
from __future__ import annotations

import pytest

from attnviz import mechanisms as M
from tests.browser import full_page_shot, wait_idle

pytestmark = pytest.mark.browser


def test_mechanisms_page_formulas_and_tiny_weights(app_server, browser_page, artifacts):
    page = browser_page
    page.goto(f"{app_server}/Mechanisms", wait_until="domcontentloaded")
    page.get_by_role("heading", name="c · Concatenate the heads, then project").wait_for(timeout=60_000)
    wait_idle(page)
    page.get_by_label("Scoring rule").first.click()
    page.get_by_role("option", name=M.RULE_NAMES["dot"], exact=True).click()
    page.get_by_role("heading", name=f"1 · Scores — {M.RULE_NAMES['dot']}").wait_for(timeout=60_000)
    wait_idle(page)

    t = M.attention(M.CLASSIC.Q, M.CLASSIC.K, M.CLASSIC.V, "dot")
    for label in M.format_probabilities(t.weights, t.log_weights)[0]:
        assert page.locator("[data-testid=stTable] td", has_text=label).count() >= 1, label
    assert page.locator(".katex").count() >= 10  # every st.latex line rendered by KaTeX ...
    assert page.locator(".katex-error").count() == 0  # ... and none failed to parse
    assert page.locator('[data-testid="stException"]').count() == 0
    full_page_shot(page, artifacts / "mechanisms_page.png")
