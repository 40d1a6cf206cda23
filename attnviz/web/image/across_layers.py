"""Image view *Across layers*: raw attention (the focused layer, heads averaged), rollout and flow of the query
([CLS] or a patch) side by side as maps over the picture (Abnar & Zuidema 2020)."""
from __future__ import annotations

import numpy as np
import streamlit as st

from attnviz.analysis.patches import rollout_map, to_grid
from attnviz.analysis.rollout import rollout_row
from attnviz.export import measures_csv
from attnviz.render.overlay import mark_patch, overlay
from attnviz.render.raster import jpeg_bytes
from attnviz.result import AttentionResult
from attnviz.web import flow
from attnviz.web.image.context import ImageContext
from attnviz.web.runs import RESULT_TTL_S, ImageRun
from attnviz.web.widgets import Download

LABEL = "Across layers"


@st.cache_data(show_spinner=False, max_entries=32, ttl=RESULT_TTL_S)
def rollout_grid(key: tuple[str, str, str], _run: ImageRun, query: int, head_fusion: str,
                 discard_ratio: float) -> np.ndarray:
    """Rollout of ``query`` over the patches, ``[rows, cols]``; ``key`` is ``_run.key``."""
    result = _run.result()
    return rollout_map(result, result.grid, query, head_fusion, discard_ratio)


def raw_row(result: AttentionResult, layer: int, query: int) -> np.ndarray:
    """``[key]``: what ``query`` attends to in ``layer``, heads averaged."""
    return np.mean([result.row(layer, h, query) for h in range(result.n_heads)], axis=0, dtype=np.float32)


def show(ctx: ImageContext) -> list[Download]:
    """The three maps (flow at once, after a click or refused, by its cost); offers the rollout and flow overlays
    and the three measures as CSV."""
    result, run, query, layer, look, chosen = ctx.result, ctx.run, ctx.query, ctx.layer, ctx.look, ctx.chosen
    st.subheader(f"Across layers: attention of {ctx.who}")
    st.caption("How much the chosen token draws on each patch. **Raw**: the focused layer's attention, heads "
               "averaged. **Rollout** and **flow** (Abnar & Zuidema 2020) follow attention through every layer, "
               "with the residual connection as 0.5·I: rollout multiplies the per-layer matrices, flow treats "
               "them as capacities of a graph and takes the max-flow. Flow is costly: one max-flow per input "
               f"token, {flow.duration(flow.row_seconds(result))} for one token of {result.model} on "
               "this server.")
    c = st.container(horizontal=True, gap="large")
    fusion = c.radio("Rollout: fuse heads by", ["mean", "max", "min"], horizontal=True, key="image_fusion",
                     width="content")
    discard = c.slider("Rollout: discard the lowest share of weights", 0.0, 0.95, 0.0, 0.05, key="image_discard",
                       help="vit-explain's discard ratio: per layer, this share of the smallest fused weights "
                            "is set to 0 before rolling out.", width=420)
    raw = raw_row(result, layer, query)
    rolled = rollout_grid(run.key, run, query, fusion, discard)  # [rows, cols]
    panels = st.columns(3)
    with panels[2]:
        flow_row = flow.flow_row_view(run.key, result, query, ctx.who, "image_flow_go")
    maps = {f"Raw · layer {layer}, mean of heads": to_grid(raw, result.grid), "Rollout": rolled,
            "Flow": None if flow_row is None else to_grid(flow_row, result.grid)}
    notes = {f"Raw · layer {layer}, mean of heads": "", "Rollout": f" ({fusion} over heads, discard {discard:.0%})",
             "Flow": " (mean over heads)"}
    images = {}
    for col, (name, grid_map) in zip(panels, maps.items(), strict=True):
        if grid_map is None:
            continue
        img = overlay(ctx.shown, grid_map, look.opacity, look.colorscale, smooth=look.smooth, ceiling=look.ceiling)
        images[name] = mark_patch(img, result.grid, *chosen) if chosen else img
        col.image(jpeg_bytes(images[name]), output_format="JPEG",
                  caption=f"{name}{notes[name]}: {float(grid_map.sum()):.0%} of it on patches")
    tokens, stem = result.tokens, ctx.stem  # the download callables keep these, not the result
    rollout_image, flow_image = images["Rollout"], images.get("Flow")
    items = [Download("Rollout overlay", "png", f"{stem}_rollout", lambda: rollout_image)]
    if flow_image is not None:
        items.append(Download("Flow overlay", "png", f"{stem}_flow", lambda: flow_image))
    items.append(Download(
        "Raw, rollout, flow", "csv", f"{stem}_raw_rollout_flow",
        lambda: measures_csv({f"raw_layer{layer}": raw,
                              "rollout": rollout_row(run.result(), query, fusion, discard), "flow": flow_row},
                             tokens),
        help="One row per key token ([CLS], then the patches row by row), one column per measure."))
    return items
