"""attnviz: the landing page. The views live in pages/ (one file per page)."""
import streamlit as st

st.set_page_config(page_title="attnviz", page_icon="🔎", layout="wide")
st.title("attnviz")
st.markdown(
    "See what a real transformer attends to. Type a sentence or upload an image; a small pretrained model runs "
    "on this server and every layer and head of its attention is shown: an all-heads overview, a focused head "
    "with hover values, per-layer summaries and exports of every view as images and raw numbers."
)
st.page_link("pages/1_Text.py", label="Text attention: MiniLM on your sentence (or sentence pair)", icon="🔤")
for path, label, icon in [
    ("pages/2_Image.py", "Image attention: DINOv2 and tiny ViTs on your picture", "🖼️"),
    ("pages/3_Mechanisms.py", "Mechanisms: how attention is computed, step by step", "🧮"),
    ("pages/4_Compare.py", "Compare: two inputs or two models side by side", "⚖️"),
    ("pages/5_Cross_Attention.py", "Cross-attention: an encoder-decoder aligning input and output", "🔀"),
]:
    try:
        st.page_link(path, label=label, icon=icon)
    except Exception:  # page not present in this build
        pass
st.caption("Everything runs locally: no model hub, no CDN. The same results come from the Python API "
           "(`import attnviz`) and the command line (`python -m attnviz export`).")
