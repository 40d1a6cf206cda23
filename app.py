"""attnviz in the browser: ``streamlit run app.py`` (or ``make run``).

Applies the server's process settings once (:func:`attnviz.server.configure`), then
routes to the Home page or one of :data:`attnviz.web.site.PAGES` (their entry files are in ``pages/``).
"""
from attnviz import server

server.configure()

import streamlit as st  # noqa: E402

from attnviz.web import site  # noqa: E402

st.set_page_config(page_title="attnviz", page_icon=":material/visibility:", layout="wide")
site.serve()
