"""Compare: two texts or two models side by side, and their difference (:mod:`attnviz.web.compare`)."""
import streamlit as st

from attnviz.web import compare, site

st.set_page_config(page_title="attnviz · Compare", page_icon="🔎", layout="wide")
site.enter(compare.main)
