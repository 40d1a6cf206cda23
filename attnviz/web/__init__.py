"""attnviz in the browser: everything that imports Streamlit, besides ``app.py``, ``pages/`` and ``attnviz.server``.

The rooms, and what goes in each:

- :mod:`attnviz.web.site`: the pages of the app (entry file, title, URL, icon, one line for the Home page); ``app.py``
  builds ``st.navigation`` from it. A new page: an entry file in ``pages/``, a module here, one entry in ``PAGES``.
- :mod:`attnviz.web.runs`: models, the shared result cache, run slots, the one input digest (``TextRun``,
  ``ImageRun`` name a run; a session keeps those, never a result).
- :mod:`attnviz.web.widgets`: pickers (model, colour scale, layer and head), download strips driven by
  :data:`attnviz.export.FORMATS`, error display, URL state, Markdown escaping.
- :mod:`attnviz.web.text`: the Text page, one module per tab (``VIEWS``); :mod:`attnviz.web.image`: the Image page,
  one module per section (``VIEWS``). A new tab or section: one module there and one entry in its ``VIEWS``.
- :mod:`attnviz.web.matrix` (a ``[query, key]`` matrix as a chart or an image, Text and Compare),
  :mod:`attnviz.web.flow` (attention flow of one token with a progress bar, Text and Image).
- One module per other page: :mod:`attnviz.web.home`, :mod:`attnviz.web.mechanisms`, :mod:`attnviz.web.compare`,
  :mod:`attnviz.web.cross_attention`.

Numbers come from :mod:`attnviz.analysis`, figures from :mod:`attnviz.render`, files from :mod:`attnviz.export`;
modules here read widgets, call cached functions and show what they return.
"""
