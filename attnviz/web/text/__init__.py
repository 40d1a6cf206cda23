"""The Text page's room: one module per tab, listed in :data:`VIEWS` (the page shows them in this order).

A view is a module with

- ``LABEL``: the tab's label (it goes in the URL as ``text_view``, so renaming one breaks old links);
- ``show(ctx: TextContext) -> None``: draws the tab from :class:`attnviz.web.text.context.TextContext` (the run,
  its result, the weights with the page's view options applied, the focused layer and head, the colour scale, the
  file stem), with its own widgets (keys start with the view's name) and its own downloads
  (:func:`attnviz.web.widgets.download_strip`).

Only the open tab's ``show`` runs, so a Run draws one view, not all of them. To add a tab: write
``attnviz/web/text/<view>.py`` with ``LABEL`` and ``show`` and add it to :data:`VIEWS`; caches the view needs live
in its module (``st.cache_data`` keyed by ``ctx.run.key``). What a view must not do: keep ``ctx`` or the result in
anything the session keeps (download callables, widget callbacks, ``format_func``): name ``ctx.run`` instead
(tests/test_page_text.py checks that no view does).
"""
from __future__ import annotations

from collections.abc import Sequence

from attnviz.web.text import (
    across_layers,
    faithfulness,
    focused_head,
    generation,
    head_statistics,
    head_view,
    per_layer,
)
from attnviz.web.text.context import TextView

VIEWS: Sequence[TextView] = (focused_head, per_layer, head_view, across_layers, head_statistics, faithfulness,
                               generation)
"""The Text page's tabs, in order."""

__all__ = ["VIEWS"]
