"""The Home page: what attnviz is, a link to each page (:data:`attnviz.web.site.PAGES`) and a picture of the Text
page. Opening it starts loading the default models in the background."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from attnviz.web import runs
from attnviz.web.site import PAGES

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    """The page."""
    runs.warm_up("minilm", "dinov2-small")
    st.title("attnviz")
    st.markdown(
        "See what a real transformer attends to. Type a sentence or upload an image; a small pretrained model runs "
        "on this server and every layer and head of its attention is shown: an all-heads overview, a focused head "
        "with hover values, per-layer summaries, and exports of every view as images and raw numbers."
    )
    left, right = st.columns([2, 3])
    with left:
        for page in PAGES:
            if (ROOT / page.path).is_file():
                st.page_link(page.path, label=f"**{page.heading}**", icon=page.icon)
                st.caption(page.what)
        st.caption("Everything runs locally: no model hub, no CDN. The same results come from the Python API "
                   "(`import attnviz`) and the command line (`python -m attnviz export`).")
    with right:
        st.image(str(ROOT / "assets" / "text-page.png"), caption="The Text page: all heads and a focused head")
