"""The Image page's room: one module per section below the all-heads grid, listed in :data:`VIEWS` (the page shows
them in this order, then one *Export* strip with what they offer).

A view is a module with

- ``LABEL``: the section's name;
- ``show(ctx: ImageContext) -> list[Download]``: draws the section from
  :class:`attnviz.web.image.context.ImageContext` (the run, its result, the picture as shown, the query token
  ([CLS] or a patch), the focused layer and head, how maps are drawn, the file stem), with its own widgets (keys
  start with ``image_``), and returns the downloads it offers for the page's *Export* strip (or shows its own strip
  and returns ``[]``).

To add a view: write ``attnviz/web/image/<view>.py`` with ``LABEL`` and ``show`` and add it to :data:`VIEWS`; caches
it needs live in its module (``st.cache_data`` keyed by ``ctx.run.key``). A view must not keep ``ctx`` or the result
in anything the session keeps (download callables, callbacks): name ``ctx.run`` instead (tests/test_page_image.py).
"""
from __future__ import annotations

from collections.abc import Sequence

from attnviz.web.image import across_layers, faithfulness, focused_head, per_layer
from attnviz.web.image.context import ImageView

VIEWS: Sequence[ImageView] = (focused_head, across_layers, per_layer, faithfulness)
"""The Image page's sections below the all-heads grid, in order."""

__all__ = ["VIEWS"]
