"""The Home page (app.py's default page) through Streamlit's AppTest: the title and a link to every page."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.text_app import ROOT, TIMEOUT


def test_landing_page_links_to_pages():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert "attnviz" in at.title[0].value
    assert any("Text" in str(link.proto.label) for link in at.get("page_link"))
