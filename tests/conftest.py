"""Shared fixtures: the real models (loaded once per session), the running app and a real browser."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS, chromium_missing_reason, streamlit_server

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def minilm():
    import attnviz

    return attnviz.load_model("minilm")


@pytest.fixture(scope="session")
def app_server(tmp_path_factory) -> str:
    """Base URL of ``streamlit run app.py`` on a free loopback port."""
    _require_browser()
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    with streamlit_server(log) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def browser_page(browser):
    """A fresh page (own context, so downloads and dialogs are isolated)."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = ctx.new_page()
    yield page
    ctx.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where browser tests leave screenshots for people to look at."""
    p = ROOT / "tests" / "artifacts"
    p.mkdir(exist_ok=True)
    return p


def _require_browser() -> None:
    reason = chromium_missing_reason()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests must run in CI: {reason}")
        pytest.skip(reason)
