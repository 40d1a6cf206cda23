"""Cross-attention: an encoder-decoder aligning its output with its input (:mod:`attnviz.web.cross_attention`)."""
import streamlit as st

from attnviz.web import cross_attention, site

st.set_page_config(page_title="attnviz · Cross-attention", page_icon="🔀", layout="wide")
site.enter(cross_attention.main)
