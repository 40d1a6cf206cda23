"""The Image page: a picture in (an upload or a shipped example), every layer and head of a vision transformer out.

Top to bottom: the input (uploader, example, model), the run's caption, the query controls (the [CLS] token or a
patch, clicked on the picture or typed) and colour controls, the all-heads grid, the focused layer and head, the
views of :data:`attnviz.web.image.VIEWS`, and one *Export* strip with the run's files and what the views offer.
"""
from __future__ import annotations

import streamlit as st
from PIL import Image

from attnviz.analysis.patches import n_prefix, patch_index, query_maps
from attnviz.export import tokens_json
from attnviz.images import LIMITS_TEXT
from attnviz.render.image_figures import patch_picker_figure, probabilities_figure
from attnviz.render.overlay import overlay_grid
from attnviz.render.raster import jpeg_bytes, png_bytes
from attnviz.result import WEIGHTS_MAX_BYTES
from attnviz.web import runs, widgets
from attnviz.web.image import VIEWS
from attnviz.web.image.context import ImageContext, Look
from attnviz.web.image.picture import examples, on_patch_click, picker_source, read_image
from attnviz.web.runs import RESULT_TTL_S, ImageRun
from attnviz.web.widgets import BIND, Download, download_strip

CLS_LABEL, PATCH_LABEL = "[CLS] token", "A patch"
MODEL_EXAMPLES = {"dinov2-small": "cat", "vit-fashion": "fashion ankle boot", "shapes-vit": "shapes triangle"}
"""The example each model starts with (picked again when the model changes)."""
GRID_CELL = 128
"""Side (px) of each head's map in the all-heads grid."""


def _grid(run: ImageRun, query: int, look: Look, contributions: bool = False) -> Image.Image:
    """Every layer x head: what ``query`` attends to (its contributions), over the picture."""
    result = run.result()
    shown = read_image(run.data_digest, run.data)[0]
    maps = query_maps(result, result.grid, query, contributions)  # [layer, head, rows, cols]: the query's rows
    return overlay_grid(shown, maps, [f"L{i}" for i in range(result.n_layers)],
                        [f"H{j}" for j in range(result.n_heads)], GRID_CELL, look.opacity, look.colorscale,
                        look.smooth, ceiling=look.ceiling)


@st.cache_data(show_spinner=False, max_entries=32, ttl=RESULT_TTL_S)
def grid_jpeg(key: tuple[str, str, str], _run: ImageRun, query: int, look: Look, contributions: bool = False) -> bytes:
    """The all-heads grid as the page shows it (JPEG); ``key`` is ``_run.key``."""
    return jpeg_bytes(_grid(_run, query, look, contributions))


@st.cache_data(show_spinner=False, max_entries=8, ttl=RESULT_TTL_S)
def grid_png(key: tuple[str, str, str], _run: ImageRun, query: int, look: Look, contributions: bool = False) -> bytes:
    """The all-heads grid as a PNG download (made on click)."""
    return png_bytes(_grid(_run, query, look, contributions), compress_level=1)


def _resolution(model: str, where) -> int | None:
    """The side the model reads the picture at, for a model that reads several (DINOv2: 224 to 518 px); None for
    the others (and when the model cannot be loaded: the page then says why)."""
    try:
        sizes = getattr(runs.load_with_progress(model), "image_sizes", ())
    except ValueError:
        return None
    if len(sizes) < 2:
        return None
    return where.select_slider(
        "Resolution (px)", sizes, value=sizes[0], key=f"image_size_{model}",
        help=f"The side the picture is resized to for the model: {sizes[0]} px (the default) to {sizes[-1]} px. "
             f"More pixels, more patches ({sizes[0] // 14}×{sizes[0] // 14} at {sizes[0]} px, "
             f"{sizes[-1] // 14}×{sizes[-1] // 14} at {sizes[-1]} px): finer maps, and a longer run.")


def _input() -> tuple[ImageRun, str]:
    """Uploader, example, model and resolution; the run and the file's name. Stops the page when there is no
    picture."""
    names = list(examples())
    a, b, c = st.columns([3, 2, 3])
    with c:
        model = widgets.model_picker("image", key="image_model", default="dinov2-small", bind=True)
        size = _resolution(model, st)
    last_model = st.session_state.get("image_last_model")
    if last_model != model:  # a new model starts on an example it was made for (unless a link names one)
        st.session_state["image_last_model"] = model
        linked = last_model is None and st.query_params.get("image_example") in names
        if MODEL_EXAMPLES.get(model) in names and not linked:
            st.session_state["image_example"] = MODEL_EXAMPLES[model]
    # No ``type=`` filter: Streamlit refuses another type in the browser with a red file chip, its reason only in a
    # hover tooltip, and keeps showing the example; unfiltered, load_image's error says what to upload instead.
    upload = a.file_uploader("Upload an image", key="image_upload", help=LIMITS_TEXT)
    example = b.selectbox("…or an example", names, key="image_example", disabled=upload is not None, bind=BIND)
    if upload is not None:
        return ImageRun.of(model, upload.getvalue(), size), upload.name
    if example is not None:
        path = examples()[example]
        return ImageRun.of(model, path.read_bytes(), size), path.name
    st.info("No example images are installed: upload a picture.")
    st.stop()


def main() -> None:
    """The page (the result stays local to this run, so nothing a session keeps holds on to it)."""
    st.title("Image attention")
    st.caption("Upload a picture or choose an example. A vision transformer cuts it into square patches; every head of "
               "every layer is shown as a map over the picture of where the [CLS] token (or a patch you choose) looks. "
               f"Accepted: {LIMITS_TEXT}")
    run, source = _input()
    try:
        shown, notices, described = read_image(run.data_digest, run.data)
        result = runs.result_with_progress(run)
    except ValueError as e:
        widgets.show_value_error(e)
        st.stop()

    for notice in notices:
        st.info(notice, icon="ℹ️")
    rows, cols = result.grid
    prefix = n_prefix(result.n_tokens, result.grid)  # [CLS], and DeiT's [DIST] or registers: before the patches
    before = ", ".join(result.tokens[:prefix])
    extras = result.extras
    resized = (f" · the whole picture is resized to {extras.input_hw[1]}×{extras.input_hw[0]} px for the model (no "
               "crop), and the maps are stretched back over it" if extras is not None else "")
    st.caption(f"**{widgets.md_literal(source)}** ({described}) · **{result.model}**: {result.n_layers} layers × "
               f"{result.n_heads} heads, {rows}×{cols} patches + {before} = {result.n_tokens:,} tokens{resized}.")
    if extras is not None and extras.inverted:
        st.info("The picture has a light background, so it was inverted first: this model was trained on light "
                "objects on black.", icon="🔁")

    # ------------------------------------------------------------------------------------------------ controls
    widgets.clamp_state("image_row", rows - 1)
    widgets.clamp_state("image_col", cols - 1)
    st.session_state.setdefault("image_query_kind", CLS_LABEL)
    pick, controls = st.columns([2, 3])
    with controls:
        kind = st.radio("Show the attention of", [CLS_LABEL, PATCH_LABEL], key="image_query_kind", horizontal=True,
                        help="[CLS] is the token a ViT classifies from; choose a patch to see where that patch looks.")
        # Pairs of controls share a row as one horizontal container (one element each; columns are 1 + n).
        r = st.container(horizontal=True)
        row = r.number_input("Patch row", 0, rows - 1, key="image_row", disabled=kind == CLS_LABEL)
        col = r.number_input("Patch column", 0, cols - 1, key="image_col", disabled=kind == CLS_LABEL)
        o = st.container(horizontal=True)
        colorscale = widgets.colorscale_picker("image_colorscale", o)
        opacity = o.slider("Heatmap opacity", 0.0, 1.0, 0.6, 0.05, key="image_opacity")
        o = st.container(horizontal=True, vertical_alignment="center")
        ceiling = o.slider("Colour ceiling (percentile of each map)", 90.0, 100.0, 99.0, 0.5, key="image_ceiling",
                           help="Each map is coloured from 0 to this percentile of its values; the few patches above "
                                "it get the top colour. 100 = the map's maximum. DINOv2 has a few outlier patches "
                                "that would otherwise darken the rest.")
        smooth = o.toggle("Smooth", value=False, key="image_smooth",
                          help="Interpolate between patch centres instead of one flat square per patch.")
        contributions = widgets.contributions_toggle(result, "image_contributions", o)
        if extras is not None and extras.prediction is not None:
            st.markdown(f"**Prediction: {extras.prediction}** ({extras.probabilities[extras.prediction]:.1%})")
            st.plotly_chart(probabilities_figure(extras.probabilities, extras.prediction), key="image_probabilities")
    chosen = (int(row), int(col)) if kind == PATCH_LABEL else None
    query = patch_index(*chosen, result.grid, prefix) if chosen else 0
    who = f"patch ({chosen[0]}, {chosen[1]})" if chosen else "[CLS]"
    with pick:
        st.plotly_chart(patch_picker_figure(shown, result.grid, chosen, picker_source(run.data_digest, run.data)),
                        key="image_pick",
                        on_select=on_patch_click("image_pick", "image_row", "image_col", "image_query_kind",
                                                 PATCH_LABEL),
                        selection_mode="points", config={"displayModeBar": False})
        st.caption("Click a patch to see what it attends to (or set row and column).")

    file_stem = f"{result.model}_{run.data_digest[:12]}" + (f"_{run.image_size}px" if run.image_size else "")
    stem = file_stem + (f"_patch{chosen[0]}-{chosen[1]}" if chosen else "_cls")
    look = Look(opacity, colorscale, smooth, ceiling)

    # ------------------------------------------------------------------------------------------------- all heads
    measure = "contributions" if contributions else "attention"
    suffix = "_contrib" if contributions else ""
    st.subheader(f"All heads: {measure} of {who}")
    st.caption(f"Rows are layers (L), columns are heads (H); each map is coloured from 0 to its own "
               f"{'maximum' if ceiling >= 100 else f'{ceiling:g}th percentile'}"
               + (" (contributions: each weight times its patch's value norm)." if contributions else "."))
    st.image(grid_jpeg(run.key, run, query, look, contributions), output_format="JPEG",
             caption=f"{result.model}: all {result.n_layers * result.n_heads} heads, {measure} of {who}")

    # --------------------------------------------------------------------------------------- the focused head on
    layer, head = widgets.layer_head_picker(result.n_layers, result.n_heads, "image", first_layer=result.n_layers - 1)
    ctx = ImageContext(run=run, result=result, shown=shown, query=query, who=who, chosen=chosen, layer=layer,
                       head=head, look=look, stem=stem, contributions=contributions)
    offered = [item for view in VIEWS for item in view.show(ctx)]

    # ------------------------------------------------------------------------------------------------------ export
    st.subheader("Export")
    download_strip([
        Download("All heads", "png", f"{stem}_grid{suffix}", lambda: grid_png(run.key, run, query, look,
                                                                               contributions)),
        *offered,
        *([Download("Weights", "npy", f"{file_stem}_weights", lambda: run.result().weights,
                    help=f"All heads, [layer, head, query, key], float32; positions: {before}, then the patches "
                         "row by row.")] if result.weights_nbytes <= WEIGHTS_MAX_BYTES else []),
        Download("Tokens", "json", f"{file_stem}_tokens", lambda: tokens_json(run.result())),
    ], key="dl_image")
