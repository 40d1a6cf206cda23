"""Cross-attention: an encoder-decoder aligning its output with its input (:mod:`attnviz.web.cross_attention`)."""
import streamlit as st

from attnviz.web import cross_attention

st.set_page_config(page_title="attnviz · Cross-attention", page_icon="🔀", layout="wide")
cross_attention.main()
