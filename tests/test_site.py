"""The app's navigation (attnviz/web/site.py): a first visit by a link to a page goes through app.py, in a browser."""
from __future__ import annotations

import pytest

from attnviz.web.site import PAGES
from tests.browser import streamlit_server, wait_idle

pytestmark = pytest.mark.browser


def test_a_first_visit_by_link_gets_the_apps_sidebar(browser_page, tmp_path):
    """On a server nobody has visited yet, a link to a page shows that page under the app's own sidebar (Home, the
    pages' titles), not one made from the entry files' names ("app", "Cross Attention")."""
    page = browser_page
    with streamlit_server(tmp_path / "streamlit.log") as url:
        page.goto(f"{url}/Mechanisms", wait_until="domcontentloaded")
        page.get_by_role("heading", name="Mechanisms: how attention is computed").wait_for(timeout=60_000)
        wait_idle(page)
        nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
        assert "Home" in nav and "app" not in nav.split()
        assert all(p.title in nav for p in PAGES)
        assert page.url.endswith("/Mechanisms")
        assert page.locator('[data-testid="stException"]').count() == 0
