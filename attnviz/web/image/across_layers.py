"""Image view *Across layers*: raw attention (the focused layer, heads averaged), rollout and flow of the query
([CLS] or a patch) side by side as maps over the picture (Abnar & Zuidema 2020); below them the ALTI roll-up of the
query (Ferrando et al. 2022) and, for a classifier, the gradient relevance of the patches for a class (Chefer et al.
2021) with the class's probability."""
from __future__ import annotations

import re

import numpy as np
import streamlit as st

from attnviz.analysis.patches import rollout_map, to_grid
from attnviz.analysis.rollout import rollout_row
from attnviz.export import matrix_csv, measures_csv
from attnviz.render.overlay import mark_patch, overlay
from attnviz.render.raster import jpeg_bytes
from attnviz.result import AttentionResult
from attnviz.web import explain, flow
from attnviz.web.image.context import ImageContext
from attnviz.web.runs import RESULT_TTL_S, ImageRun
from attnviz.web.widgets import Download, md_literal

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
    alti_row, more = _beyond_attention(ctx)
    items.append(Download(
        "Raw, rollout, flow", "csv", f"{stem}_raw_rollout_flow",
        lambda: measures_csv({f"raw_layer{layer}": raw,
                              "rollout": rollout_row(run.result(), query, fusion, discard), "flow": flow_row,
                              "alti": alti_row}, tokens),
        help="One row per key token ([CLS], then the patches row by row), one column per measure (ALTI when "
             "computed)."))
    return items + more


def _overlay(ctx: ImageContext, grid_map: np.ndarray, mark: bool = True):
    look = ctx.look
    img = overlay(ctx.shown, grid_map, look.opacity, look.colorscale, smooth=look.smooth, ceiling=look.ceiling)
    return mark_patch(img, ctx.result.grid, *ctx.chosen) if ctx.chosen and mark else img


def _beyond_attention(ctx: ImageContext) -> tuple[np.ndarray | None, list[Download]]:
    """The ALTI roll-up of the query and, for a classifier, the relevance of the patches for a class (select box
    ``image_target``: the prediction or another class); the ALTI row ``[key]`` (None when not computed) and the
    downloads."""
    result, run, stem = ctx.result, ctx.run, ctx.stem
    extras = result.extras
    classifier = extras is not None and extras.probabilities is not None
    st.markdown("**Beyond attention weights.** **ALTI** (Ferrando et al. 2022) follows what each patch *contributes* "
                "to the query through every layer's whole attention block (value vectors, residual and norm), not "
                "the weights alone. **Relevance** (Chefer et al. 2021) is what the classifier's score of one class "
                "depended on: each layer's attention weighted by the gradient of that class's logit; it is about "
                "the prediction, so it does not depend on the chosen query.")
    left, middle, right = st.columns(3)
    items: list[Download] = []
    with left:
        alti = explain.alti_rollup_view(run, result.n_tokens, "image_alti_go")
    alti_row = None if alti is None else alti[ctx.query]
    if alti_row is not None:
        grid_map = to_grid(alti_row, result.grid)
        alti_image = _overlay(ctx, grid_map)
        left.image(jpeg_bytes(alti_image), output_format="JPEG",
                   caption=f"ALTI roll-up of {ctx.who}: {float(grid_map.sum()):.0%} of it from patches")
        items.append(Download("ALTI overlay", "png", f"{stem}_alti", lambda: alti_image))
    if not classifier:
        right.caption(f"Relevance needs a prediction: {result.model} is a backbone with no classes. Choose "
                      "vit-fashion or shapes-vit for it.")
        return alti_row, items
    classes = list(extras.probabilities)
    if st.session_state.get("image_target", -1) >= len(classes):  # another model's class
        st.session_state["image_target"] = -1
    with right:
        choice = st.selectbox("Relevance for the class", range(-1, len(classes)), key="image_target",
                              format_func=lambda i: f"the prediction ({extras.prediction})" if i < 0
                              else f"{classes[i]} ({extras.probabilities[classes[i]]:.1%})")
    target = None if choice < 0 else int(choice)
    try:
        with middle, st.spinner("Gradient relevance…"):
            rel = explain.image_relevance(run, target)
    except ValueError as e:
        middle.caption(f"Relevance: not computed. {md_literal(str(e))}")
        return alti_row, items
    rel_image = _overlay(ctx, rel.scores, mark=False)
    middle.image(jpeg_bytes(rel_image), output_format="JPEG",
                 caption=f"Relevance for {rel.label}: the model gives it {rel.probability:.1%}")
    right.markdown(f"Prediction: **{md_literal(extras.prediction)}** "
                   f"({extras.probabilities[extras.prediction]:.1%}); explained: **{md_literal(rel.label)}** "
                   f"({rel.probability:.1%}).")
    rows, cols = result.grid
    scores, label = rel.scores, re.sub(r"[^\w.-]+", "-", rel.label)  # class names may hold a "/"
    items += [Download("Relevance overlay", "png", f"{stem}_relevance_{label}", lambda: rel_image),
              Download("Relevance", "csv", f"{stem}_relevance_{label}",
                       lambda: matrix_csv(scores, [f"row {r}" for r in range(rows)], [f"col {c}" for c in range(cols)]),
                       help="The relevance of each patch, [row, column] as the model's patch grid.")]
    return alti_row, items
