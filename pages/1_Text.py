"""Text attention: every layer and head of a text model on your sentence (:mod:`attnviz.web.text`)."""
import streamlit as st

from attnviz.web import site
from attnviz.web.text import page

st.set_page_config(page_title="attnviz · Text", page_icon="🔎", layout="wide")
site.enter(page.main)
