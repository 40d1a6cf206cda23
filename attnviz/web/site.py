"""The pages of the app, in the order of the sidebar: ``app.py`` builds ``st.navigation`` from :data:`PAGES`, and
the Home page lists them. A page is an entry file in ``pages/`` (a few lines: ``set_page_config``, then its web
module's ``main``); its URL path keeps the name older links use (``/Text``, ``/Cross_Attention``...).
"""
from __future__ import annotations

from dataclasses import dataclass


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
