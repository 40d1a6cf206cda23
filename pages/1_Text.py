"""Text attention: every layer and head of a text model on your sentence."""
import functools

import streamlit as st

from attnviz import text_views, ui
from attnviz.coalesce import coalesced

EXAMPLE = "The animal didn't cross the street because it was too tired."


def main() -> None:
    """The page (results stay local to a run, so nothing a session keeps holds on to them)."""
    st.set_page_config(page_title="attnviz · Text", page_icon="🔎", layout="wide")
    st.title("Text attention")
    st.caption("Type a sentence (and optionally a second one, for sentence pairs) and press Run. "
               + ui.TEXT_LIMIT_NOTICE + " " + ui.URL_NOTICE)

    ui.seed_from_url("text_input", "text", EXAMPLE)
    ui.seed_from_url("text_pair", "pair", "")
    with st.form("text_form"):
        text = st.text_area("Text", height=80, key="text_input")
        row = st.container(horizontal=True, vertical_alignment="bottom")  # one element; columns are 1 + n
        pair = row.text_input("Second text (optional, for sentence pairs)", key="text_pair")
        with row:
            model_name = ui.model_picker("text", key="text_model", default="minilm", bind=True)
        if row.form_submit_button("Run", type="primary", width=120):
            st.session_state["text_run"] = (model_name, text, pair or None)

    run_model, run_text_value, run_pair = st.session_state.get("text_run", (model_name, text, pair or None))

    try:
        ui.load_with_progress(run_model)
        with st.spinner(f"Running {run_model}…"):
            result = ui.run_text(run_model, run_text_value, run_pair)
    except ValueError as e:
        ui.show_value_error(e)
        st.stop()
    ui.set_url_param("text", run_text_value, default=EXAMPLE)
    ui.set_url_param("pair", run_pair)

    if result.truncated:
        st.warning(f"The input was longer than the model's limit and was cut to its first {result.n_tokens} tokens.",
                   icon="✂️")
    st.caption(f"**{result.model}** · {result.n_layers} layers × {result.n_heads} heads · {result.n_tokens} tokens"
               + (" · causal (decoder)" if result.causal else " · bidirectional (encoder)"))

    c = st.container(horizontal=True, vertical_alignment="center", gap="large")
    hide_special = c.toggle("Hide special tokens", value=False, key="text_hide_special",
                            help="Drop [CLS]/[SEP]/[PAD] and renormalise each row over the remaining tokens.")
    colorscale = c.selectbox("Colour scale", ui.COLORSCALES, key="text_colorscale", width=260)
    minimum = c.slider("Threshold (hide weights below)", 0.0, 1.0, 0.0, 0.01, key="text_threshold")

    weights = ui.view_weights(result, hide_special, minimum)
    tokens = ui.view_tokens(result, hide_special)
    run = (run_model, run_text_value, run_pair)
    stem = f"{result.model}_{ui.input_key(*run)}"

    st.subheader("All heads")
    st.caption("Rows are layers (L), columns are heads (H); each thumbnail is one head, queries down, keys across, "
               "coloured from 0 to that head's maximum. Choose a layer and head below to focus it.")
    grid = functools.partial(ui.grid_png, *run, hide_special, minimum, colorscale)  # PNG bytes, made once, cached
    st.image(grid(), output_format="PNG", caption=f"{result.model}: all {result.n_layers * result.n_heads} heads")

    text_views.run_exports(run, grid, stem)

    f = st.container(horizontal=True)
    layer = f.selectbox("Layer", range(result.n_layers), key="text_layer", format_func=lambda i: f"L{i}",
                        bind=ui.BIND, width=200)
    head = f.selectbox("Head", range(result.n_heads), key="text_head", format_func=lambda i: f"H{i}",
                       bind=ui.BIND, width=200)

    tabs = st.tabs(text_views.VIEWS, key="text_view", bind=ui.BIND)
    with tabs[0]:
        if tabs[0].open:
            text_views.focused_head(result, run, weights, tokens, layer, head, colorscale, stem)
    with tabs[1]:
        if tabs[1].open:
            text_views.per_layer(result, weights, tokens, layer, colorscale, stem)
    with tabs[2]:
        if tabs[2].open:
            text_views.head_view(result, weights, tokens, layer, head, hide_special, stem)
    with tabs[3]:
        if tabs[3].open:
            text_views.across_layers(result, run, layer, stem)
    with tabs[4]:
        if tabs[4].open:
            text_views.head_statistics(result, run, layer, head, stem)


with coalesced():
    main()
