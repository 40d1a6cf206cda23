"""Mechanisms: how attention is computed, step by step (:mod:`attnviz.web.mechanisms`)."""
import streamlit as st

from attnviz.web import mechanisms, site

st.set_page_config(page_title="attnviz · Mechanisms", page_icon="🧮", layout="wide")
site.enter(mechanisms.main)
