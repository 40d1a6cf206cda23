"""Image attention: every head of a vision transformer over your picture (:mod:`attnviz.web.image`)."""
import streamlit as st

from attnviz.web import site
from attnviz.web.image import page

st.set_page_config(page_title="attnviz · Image", page_icon="🖼️", layout="wide")
site.enter(page.main)
