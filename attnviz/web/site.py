"""The pages of the app, in the order of the sidebar: ``app.py`` builds ``st.navigation`` from :data:`PAGES`, and
the Home page lists them. A page is an entry file in ``pages/`` (a few lines: ``set_page_config``, then its web
module's ``main``); its URL path keeps the name older links use (``/Text``, ``/Cross_Attention``...).
"""
from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx


@dataclass(frozen=True)
class PageInfo:
    """One page of the app."""

    path: str         # entry file, relative to the project root
    title: str        # in the sidebar
    url_path: str     # the page's URL: http://host/<url_path>
    icon: str
    heading: str      # on the Home page
    what: str         # one line under it


PAGES: tuple[PageInfo, ...] = (
    PageInfo("pages/1_Text.py", "Text", "Text", ":material/notes:", "Text attention",
             "MiniLM (and more) on your sentence or sentence pair"),
    PageInfo("pages/2_Image.py", "Image", "Image", ":material/image:", "Image attention",
             "DINOv2 and tiny ViTs on your picture, with rollout"),
    PageInfo("pages/3_Mechanisms.py", "Mechanisms", "Mechanisms", ":material/calculate:", "Mechanisms",
             "how attention is computed, step by step, with correct numbers"),
    PageInfo("pages/4_Compare.py", "Compare", "Compare", ":material/compare:", "Compare",
             "two inputs or two models side by side"),
    PageInfo("pages/5_Cross_Attention.py", "Cross-attention", "Cross_Attention", ":material/swap_horiz:",
             "Cross-attention", "an encoder-decoder aligning its output with its input"),
    PageInfo("pages/6_Corpus.py", "Corpus", "Corpus", ":material/library_books:", "Corpus statistics",
             "what each head does across a whole corpus (results of python -m attnviz corpus)"),
)
"""The pages besides Home, in sidebar order."""


_ROUTED: ContextVar[bool] = ContextVar("attnviz_routed", default=False)
"""True while ``app.py``'s navigation runs a page (in the script thread of one run)."""


def navigation() -> st.Page:
    """The app's ``st.navigation``: Home and :data:`PAGES`; returns the page the URL names."""
    from attnviz.web import home

    return st.navigation([st.Page(home.main, title="Home", icon=":material/home:", url_path="", default=True)]
                         + [st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path) for p in PAGES])


def serve() -> None:
    """Run the page the URL names through the app's navigation (``app.py``)."""
    token = _ROUTED.set(True)
    try:
        navigation().run()
    finally:
        _ROUTED.reset(token)


def enter(main: Callable[[], None]) -> None:
    """Run a page from its entry file in ``pages/``.

    Until some run calls ``st.navigation``, Streamlit treats a ``pages/`` folder beside the main script in its older
    way: a first visit by a link to a page runs that entry file directly, under a sidebar made from file names
    ("app", "Cross Attention"), and ``app.py`` (its settings, its navigation) does not run. Such a run calls the
    app's navigation, which ends that mode for the whole server, and starts again through ``app.py``. An entry file
    that is itself the main script (``AppTest.from_file``, ``streamlit run pages/1_Text.py``) just runs its page.
    """
    ctx = get_script_run_ctx()
    if not _ROUTED.get() and ctx is not None and Path(ctx.main_script_path).name == "app.py":
        navigation()
        st.rerun()
    main()
