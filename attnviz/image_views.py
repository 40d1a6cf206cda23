"""The Image page's *Across layers* section: raw attention vs rollout vs flow of the chosen token ([CLS] or a
patch), side by side as maps over the picture. Widgets and cached calls only; numbers come from
:mod:`attnviz.analysis`, pictures from :mod:`attnviz.render`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
from PIL import Image

from attnviz import ui_flow, ui_image
from attnviz.analysis import rollout
from attnviz.analysis.patches import to_grid
from attnviz.export import measures_csv
from attnviz.render.overlay import mark_patch, overlay
from attnviz.render.raster import jpeg_bytes, png_bytes
from attnviz.result import AttentionResult


@dataclass(frozen=True)
class Look:
    """How the page draws a map over the picture (its colour controls)."""

    opacity: float
    colorscale: str
    smooth: bool
    ceiling: float  # percentile of each map given the top colour


def raw_row(weights: np.ndarray, layer: int, query: int) -> np.ndarray:
    """``[key]``: what ``query`` attends to in ``layer``, heads averaged (rows of ``[layer, head, query, key]``)."""
    return weights[layer, :, query, :].mean(axis=0)


def across_layers(result: AttentionResult, key: str, data: bytes, shown: Image.Image, query: int, who: str,
                  layer: int, chosen: tuple[int, int] | None, look: Look, stem: str) -> Image.Image:
    """Raw (the focused layer, heads averaged), rollout and flow of ``query`` side by side, with downloads.

    Args:
        key: the input's digest (:func:`attnviz.ui_image.data_key`); ``data`` its bytes; ``shown`` the picture.
        who: how the page names the query (``"[CLS]"``, ``"patch (3, 4)"``); ``chosen``: that patch, if one.
    Returns:
        The rollout overlay (the page's Export offers it).
    """
    st.subheader(f"Across layers: attention of {who}")
    st.caption("How much the chosen token draws on each patch. **Raw**: the focused layer's attention, heads "
               "averaged. **Rollout** and **flow** (Abnar & Zuidema 2020) follow attention through every layer, "
               "with the residual connection as 0.5·I: rollout multiplies the per-layer matrices, flow treats "
               "them as capacities of a graph and takes the max-flow. Flow is costly: one max-flow per input "
               f"token, {ui_flow.duration(ui_flow.row_seconds(result.weights))} for one token of {result.model} on "
               "this server.")
    c = st.container(horizontal=True, gap="large")
    fusion = c.radio("Rollout: fuse heads by", ["mean", "max", "min"], horizontal=True, key="image_fusion",
                     width="content")
    discard = c.slider("Rollout: discard the lowest share of weights", 0.0, 0.95, 0.0, 0.05, key="image_discard",
                       help="vit-explain's discard ratio: per layer, this share of the smallest fused weights "
                            "is set to 0 before rolling out.", width=420)
    raw = raw_row(result.weights, layer, query)
    rolled = ui_image.rollout_grid(result.model, key, data, query, fusion, discard)  # [rows, cols]
    panels = st.columns(3)
    with panels[2]:
        flow = ui_flow.flow_row_view(("image", result.model, key), result.weights, query, who, "image_flow_go")
    maps = {f"Raw · layer {layer}, mean of heads": to_grid(raw, result.grid), "Rollout": rolled,
            "Flow": None if flow is None else to_grid(flow, result.grid)}
    notes = {f"Raw · layer {layer}, mean of heads": "", "Rollout": f" ({fusion} over heads, discard {discard:.0%})",
             "Flow": " (mean over heads)"}
    images = {}
    for col, (name, grid_map) in zip(panels, maps.items(), strict=True):
        if grid_map is None:
            continue
        img = overlay(shown, grid_map, look.opacity, look.colorscale, smooth=look.smooth, ceiling=look.ceiling)
        images[name] = mark_patch(img, result.grid, *chosen) if chosen else img
        col.image(jpeg_bytes(images[name]), output_format="JPEG",
                  caption=f"{name}{notes[name]}: {float(grid_map.sum()):.0%} of it on patches")
    tokens, model = result.tokens, result.model  # the download callables keep these, not the result
    e = st.container(horizontal=True)
    if flow is not None:
        e.download_button("Flow overlay (PNG)", key="dl_image_flow", mime="image/png", on_click="ignore",
                          file_name=f"{stem}_flow.png", data=lambda: png_bytes(images["Flow"]))
    e.download_button("Raw, rollout, flow (CSV)", key="dl_image_measures", mime="text/csv", on_click="ignore",
                      file_name=f"{stem}_raw_rollout_flow.csv",
                      help="One row per key token ([CLS], then the patches row by row), one column per measure.",
                      data=lambda: measures_csv({f"raw_layer{layer}": raw,
                                                 "rollout": rollout(ui_image.run_image(model, key, data).weights,
                                                                    fusion, discard)[query],
                                                 "flow": flow}, tokens))
    return images["Rollout"]
