"""Image attention: what each head of each layer of a vision transformer looks at, over your picture."""
import functools

import streamlit as st

from attnviz import image_views, ui, ui_image
from attnviz.analysis.patches import patch_index, query_maps
from attnviz.coalesce import coalesced
from attnviz.export import tokens_json, weights_npy
from attnviz.images import LIMITS_TEXT
from attnviz.render.overlay import heatmap_image, mark_patch, overlay
from attnviz.render.raster import jpeg_bytes, png_bytes

CLS_LABEL, PATCH_LABEL = "[CLS] token", "A patch"
# The example each model starts with (picked again when the model changes).
MODEL_EXAMPLES = {"dinov2-small": "cat", "vit-fashion": "fashion ankle boot", "shapes-vit": "shapes triangle"}


def main() -> None:
    """The page (results stay local to a run, so nothing a session keeps holds on to them)."""
    st.set_page_config(page_title="attnviz · Image", page_icon="🖼️", layout="wide")
    st.title("Image attention")
    st.caption("Upload a picture or choose an example. A vision transformer cuts it into square patches; every head of "
               "every layer is shown as a map over the picture of where the [CLS] token (or a patch you choose) looks. "
               f"Accepted: {LIMITS_TEXT}")

    # ------------------------------------------------------------------------------------------------------ input
    examples = ui_image.examples()
    names = list(examples)
    a, b, c = st.columns([3, 2, 3])
    with c:
        model_name = ui.model_picker("image", key="image_model", default="dinov2-small", bind=True)
    last_model = st.session_state.get("image_last_model")
    if last_model != model_name:  # a new model starts on an example it was made for (unless a link names one)
        st.session_state["image_last_model"] = model_name
        linked = last_model is None and st.query_params.get("image_example") in names
        if MODEL_EXAMPLES.get(model_name) in names and not linked:
            st.session_state["image_example"] = MODEL_EXAMPLES[model_name]
    # No ``type=`` filter: Streamlit refuses another type in the browser with a red file chip, its reason only in a
    # hover tooltip, and keeps showing the example; unfiltered, load_image's error says what to upload instead.
    upload = a.file_uploader("Upload an image", key="image_upload", help=LIMITS_TEXT)
    example = b.selectbox("…or an example", names, key="image_example", disabled=upload is not None,
                          bind=ui.BIND)

    if upload is not None:
        data, source = upload.getvalue(), upload.name
    elif example is not None:
        data, source = examples[example].read_bytes(), examples[example].name
    else:
        st.info("No example images are installed: upload a picture.")
        st.stop()
    key = ui_image.data_key(data)

    try:
        with st.spinner(f"Running {model_name}…"):
            shown, notices, described = ui_image.read_image(key, data)
            result = ui_image.run_image(model_name, key, data)
    except ValueError as e:
        ui.show_value_error(e)
        st.stop()

    for notice in notices:
        st.info(notice, icon="ℹ️")
    rows, cols = result.grid
    size = result.extras.get("input_size")
    st.caption(f"**{ui.md_literal(source)}** ({described}) · **{result.model}**: {result.n_layers} layers × "
               f"{result.n_heads} heads, "
               f"{rows}×{cols} patches + [CLS] = {result.n_tokens} tokens · the whole picture is resized to "
               f"{size}×{size} px for the model (no crop), and the maps are stretched back over it.")
    if result.extras.get("inverted"):
        st.info("The picture has a light background, so it was inverted first: this model was trained on light "
                "objects on black.", icon="🔁")

    # ------------------------------------------------------------------------------------------------ controls
    ui_image.clamp_state("image_row", rows - 1)
    ui_image.clamp_state("image_col", cols - 1)
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
        colorscale = o.selectbox("Colour scale", ui.COLORSCALES, key="image_colorscale")
        opacity = o.slider("Heatmap opacity", 0.0, 1.0, 0.6, 0.05, key="image_opacity")
        o = st.container(horizontal=True, vertical_alignment="center")
        ceiling = o.slider("Colour ceiling (percentile of each map)", 90.0, 100.0, 99.0, 0.5, key="image_ceiling",
                           help="Each map is coloured from 0 to this percentile of its values; the few patches above "
                                "it get the top colour. 100 = the map's maximum. DINOv2 has a few outlier patches "
                                "that would otherwise darken the rest.")
        smooth = o.toggle("Smooth", value=False, key="image_smooth",
                          help="Interpolate between patch centres instead of one flat square per patch.")
        prediction = result.extras.get("prediction")
        if prediction is not None:
            st.markdown(f"**Prediction: {prediction}** ({result.extras['probabilities'][prediction]:.1%})")
            st.plotly_chart(ui_image.probabilities_figure(result.extras["probabilities"], prediction),
                            key="image_probabilities")
    chosen = (int(row), int(col)) if kind == PATCH_LABEL else None
    query = patch_index(*chosen, result.grid) if chosen else 0
    who = f"patch ({chosen[0]}, {chosen[1]})" if chosen else "[CLS]"
    with pick:
        st.plotly_chart(ui_image.patch_picker_figure(shown, result.grid, chosen, ui_image.picker_source(key, data)),
                        key="image_pick",
                        on_select=ui_image.on_patch_click("image_pick", "image_row", "image_col", "image_query_kind",
                                                          PATCH_LABEL),
                        selection_mode="points", config={"displayModeBar": False})
        st.caption("Click a patch to see what it attends to (or set row and column).")

    stem = f"{result.model}_{key[:12]}" + (f"_patch{chosen[0]}-{chosen[1]}" if chosen else "_cls")

    # ------------------------------------------------------------------------------------------------- all heads
    st.subheader(f"All heads: attention of {who}")
    st.caption(f"Rows are layers (L), columns are heads (H); each map is coloured from 0 to its own "
               f"{'maximum' if ceiling >= 100 else f'{ceiling:g}th percentile'}.")
    view = (result.model, key, data, query, opacity, colorscale, smooth, ceiling)  # what the grids are drawn from
    st.image(ui_image.grid_jpeg(*view), output_format="JPEG",
             caption=f"{result.model}: all {result.n_layers * result.n_heads} heads, attention of {who}")

    # ---------------------------------------------------------------------------------------------- focused head
    ui_image.clamp_state("image_layer", result.n_layers - 1, result.n_layers - 1)
    ui_image.clamp_state("image_head", result.n_heads - 1)
    f = st.container(horizontal=True)
    layer = f.selectbox("Layer", range(result.n_layers), key="image_layer", format_func=lambda i: f"L{i}",
                        bind=ui.BIND, width=200)
    head = f.selectbox("Head", range(result.n_heads), key="image_head", format_func=lambda i: f"H{i}",
                       bind=ui.BIND, width=200)
    head_map = query_maps(result.weights[layer:layer + 1, head:head + 1], result.grid, query)[0, 0]  # [rows, cols]
    focus = overlay(shown, head_map, opacity, colorscale, smooth=smooth, ceiling=ceiling)
    raw = heatmap_image(head_map, shown.size, colorscale, smooth=smooth, ceiling=ceiling)
    if chosen:
        focus, raw = mark_patch(focus, result.grid, *chosen), mark_patch(raw, result.grid, *chosen)
    # Overlays on a photo are shown as JPEG bytes (st.image would re-encode anything else on every rerun);
    # downloads are PNG.
    left, right = st.columns(2)
    with left:
        st.subheader(f"Focused head: L{layer} H{head}")
        st.image(jpeg_bytes(focus), output_format="JPEG",
                 caption=f"L{layer} H{head}: attention of {who} (max {head_map.max():.3f}, "
                         f"{head_map.sum():.0%} of it on patches)")
    with right:
        st.subheader("Raw heatmap")
        st.image(jpeg_bytes(raw), output_format="JPEG", caption=f"L{layer} H{head} alone, 0 to {head_map.max():.3f}")

    # ----------------------------------------------------------------------------------------------- across layers
    look = image_views.Look(opacity, colorscale, smooth, ceiling)
    rollout_img = image_views.across_layers(result, key, data, shown, query, who, layer, chosen, look, stem)
    st.image(ui_image.layers_jpeg(*view), output_format="JPEG",
             caption=f"Each layer's heads fused: mean (top row) and max (bottom row), attention of {who}")

    # ------------------------------------------------------------------------------------------------------ export
    st.subheader("Export")
    e = st.container(horizontal=True)
    e.download_button("All heads (PNG)", data=lambda: ui_image.grid_png(*view), file_name=f"{stem}_grid.png",
                      mime="image/png", key="dl_image_grid", on_click="ignore")
    e.download_button("Focused overlay (PNG)", data=lambda: png_bytes(focus),
                      file_name=f"{stem}_L{layer}H{head}_overlay.png", mime="image/png",
                      key="dl_image_overlay", on_click="ignore")
    e.download_button("Raw heatmap (PNG)", key="dl_image_heatmap", mime="image/png", on_click="ignore",
                      file_name=f"{stem}_L{layer}H{head}_heatmap.png",
                      data=lambda: png_bytes(heatmap_image(head_map, (cols * 32, rows * 32), colorscale, smooth=smooth,
                                                           ceiling=ceiling)),
                      help="The head's map alone, 32 px per patch (the model's square input grid).")
    e.download_button("Rollout overlay (PNG)", data=lambda: png_bytes(rollout_img), file_name=f"{stem}_rollout.png",
                      mime="image/png", key="dl_image_rollout", on_click="ignore")
    # The run's own downloads fetch it from the shared cache on click (a session's download callables must not
    # hold the result: they outlive the run).
    run = functools.partial(ui_image.run_image, result.model, key, data)
    e.download_button("Weights (NPY)", key="dl_image_npy", mime="application/octet-stream", on_click="ignore",
                      file_name=f"{result.model}_{key[:12]}_weights.npy", data=lambda: weights_npy(run().weights),
                      help="All heads, [layer, head, query, key], float32; position 0 is [CLS], then the patches "
                           "row by row.")
    e.download_button("Tokens (JSON)", key="dl_image_tokens", mime="application/json", on_click="ignore",
                      file_name=f"{result.model}_{key[:12]}_tokens.json", data=lambda: tokens_json(run()))


with coalesced():
    main()
