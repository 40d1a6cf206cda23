"""attnviz: the landing page. The views live in pages/ (one file per page)."""
from pathlib import Path

import streamlit as st

from attnviz import ui

ROOT = Path(__file__).resolve().parent
PAGES = [
    ("pages/1_Text.py", "Text attention", "MiniLM (and more) on your sentence or sentence pair", ":material/notes:"),
    ("pages/2_Image.py", "Image attention", "DINOv2 and tiny ViTs on your picture, with rollout", ":material/image:"),
    ("pages/3_Mechanisms.py", "Mechanisms", "how attention is computed, step by step, with correct numbers",
     ":material/calculate:"),
    ("pages/4_Compare.py", "Compare", "two inputs or two models side by side", ":material/compare:"),
    ("pages/5_Cross_Attention.py", "Cross-attention", "an encoder-decoder aligning its output with its input",
     ":material/swap_horiz:"),
]

st.set_page_config(page_title="attnviz", page_icon=":material/visibility:", layout="wide")
ui.warm_up("minilm", "dinov2-small")
st.title("attnviz")
st.markdown(
    "See what a real transformer attends to. Type a sentence or upload an image; a small pretrained model runs "
    "on this server and every layer and head of its attention is shown: an all-heads overview, a focused head "
    "with hover values, per-layer summaries, and exports of every view as images and raw numbers."
)
left, right = st.columns([2, 3])
with left:
    for path, label, what, icon in PAGES:
        if (ROOT / path).is_file():
            st.page_link(path, label=f"**{label}**", icon=icon)
            st.caption(what)
    st.caption("Everything runs locally: no model hub, no CDN. The same results come from the Python API "
               "(`import attnviz`) and the command line (`python -m attnviz export`).")
with right:
    st.image(str(ROOT / "assets" / "text-page.png"), caption="The Text page: all heads and a focused head")
