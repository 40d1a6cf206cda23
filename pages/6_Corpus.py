"""Corpus statistics: what each head does across a whole corpus (:mod:`attnviz.web.corpus`)."""
import streamlit as st

from attnviz.web import corpus, site

st.set_page_config(page_title="attnviz · Corpus", page_icon="📚", layout="wide")
site.enter(corpus.main)
