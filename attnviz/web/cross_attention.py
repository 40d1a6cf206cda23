"""The Cross-attention page: an encoder-decoder turning a date into ISO 8601 (or another encoder-decoder of the local
models folder on any text), and which input characters (tokens) each output character (token) looked at (the
alignment), as a heatmap and as lines; its encoder and decoder self-attention in tabs."""
from __future__ import annotations

import streamlit as st

from attnviz.analysis.edges import EdgeRule
from attnviz.export import matrix_csv
from attnviz.models.hf_seq2seq import MAX_NEW_TOKENS
from attnviz.render import grid_image, labelled_heatmap, png_bytes
from attnviz.render.alignment import alignment_figure
from attnviz.render.graph import graph_figure, head_graph
from attnviz.web import runs, widgets
from attnviz.web.runs import TextRun
from attnviz.web.widgets import Download, download_strip

MODEL = "date-seq2seq"
EXAMPLES = ["Saturday, the 21st of November 2026", "Nov 21, 2026", "11/21/2026", "2026.11.21", "21 November 2026",
            "the 3rd of March, 1999", "Tue, 4 Jul 1776", "31.12.2099"]
TEXT_EXAMPLE = "The animal didn't cross the street because it was too tired."
"""What another encoder-decoder (a folder of the local models folder) reads first."""


def use_example() -> None:
    """Put the chosen example in the text box and run it."""
    if st.session_state["xattn_example"]:
        st.session_state["xattn_text"] = st.session_state["xattn_run"] = st.session_state["xattn_example"]


def main() -> None:
    """The page (results stay local to a run, so nothing a session keeps holds on to them)."""
    st.title("Cross-attention")
    name = widgets.model_picker("seq2seq", key="xattn_model", default=MODEL, only_if_choice=True,
                                label="Encoder-decoder")
    dates = name == MODEL
    unit = "character" if dates else "token"
    if dates:
        st.caption("A tiny Transformer encoder-decoder, trained by attnviz, reads a date written the way people write "
                   "it and writes it as YYYY-MM-DD, one character at a time. While writing each output character its "
                   "decoder attends to the input characters: the alignment below, like the classic translation "
                   "plots. Slashes with the year last are read month first (US); dots and dashes with the year last, "
                   "day first. Limit: the model reads a short date (its limit is shown with the result); longer input "
                   "is cut, and the page says so.")
    else:
        st.caption("The encoder reads the text and the decoder writes its most likely output, one token at a time "
                   f"(at most {MAX_NEW_TOKENS} tokens). While writing each output token the decoder attends to the "
                   "input tokens: the alignment below. Input longer than the model's limit is cut, and the page says "
                   "so.")

    # The date model and the others have their own text box and last run (a date is not a sentence).
    text_key, run_key, example = ("xattn_text", "xattn_run", EXAMPLES[0]) if dates else \
        ("xattn_any_text", "xattn_any_run", TEXT_EXAMPLE)
    if text_key not in st.session_state:
        st.session_state[text_key] = example
    with st.form("xattn_form"):
        a, b = st.columns([6, 1], vertical_alignment="bottom")
        if dates:
            text = a.text_input("A date, written any way (letters, digits, spaces and , . / - ')", key=text_key,
                                max_chars=200)
        else:
            text = a.text_input("Text", key=text_key, max_chars=2000)
        if b.form_submit_button("Run", type="primary", width="stretch", key="xattn_submit"):
            st.session_state[run_key] = text
    if dates:
        st.selectbox("…or pick an example", EXAMPLES, index=None, key="xattn_example", on_change=use_example,
                     placeholder="Examples")
    run_value = st.session_state.get(run_key, example)

    try:
        runs.load_with_progress(name)
        with st.spinner(f"Running {name}…"):
            model = runs.get_model(name)
            result = TextRun(name, run_value).result()
    except ValueError as e:
        widgets.show_value_error(e)
        st.stop()

    cross, decoder = result.parts["cross"], result.parts["decoder"]
    extras = result.extras
    if result.truncated:
        st.warning(f"The input was longer than the model reads ({model.max_chars} characters) and was cut."
                   if dates else f"The input was longer than the model's limit and was cut to its first "
                   f"{result.n_tokens:,} tokens.", icon="✂️")
    left, right = st.columns([1, 2])
    left.metric("Output", extras.output or "(nothing)", help=f"Greedy decoding: the most likely {unit} at each step.")
    heldout = getattr(model, "meta", {}).get("heldout", {})
    right.caption(
        (f"Input as the model reads it (lower-cased, spaces collapsed, at most {model.max_chars} characters): "
         f"`{extras.input}`  \n" if dates else "")
        + ("" if extras.has_year is not False else "⚠️ The input has no year (four digits, 1000-2999): every date the "
           "model learnt has one, so it read this as a date it does not know, and its output is a guess.  \n")
        + ("" if extras.valid_date is not False else "⚠️ The output is not a real calendar date: the model only knows "
           "dates, and guesses on anything else.  \n")
        + ("" if not extras.output_cut else f"The output stopped at {len(cross.tokens) - 1} tokens before its end: "
           "the last row (…) is the step that would write the next token.  \n")
        + f"**{name}**: encoder {result.n_layers} layers, decoder {cross.n_layers} layers, {cross.n_heads} heads "
        + (f"· {heldout['exact_match']:.1%} exact match on {heldout['examples']} held-out generated dates"
           if heldout else ""))

    c1, c2, c3 = st.columns(3)
    layer = c1.selectbox("Decoder layer", range(cross.n_layers), index=cross.n_layers - 1, key="xattn_layer",
                         format_func=lambda i: f"L{i}")
    head = c2.selectbox("Head", range(cross.n_heads), key="xattn_head", format_func=lambda i: f"H{i}")
    colorscale = widgets.colorscale_picker("xattn_colorscale", c3)
    stem = f"{name}_{runs.digest(run_value)[:10]}"
    title = f"{name} · cross-attention · layer {layer} · head {head}"

    tab_cross, tab_graph, tab_enc, tab_dec = st.tabs(["Alignment (cross-attention)", "Line graph",
                                                      "Encoder self-attention", "Decoder self-attention"])
    with tab_cross:
        st.caption(f"Rows: output {unit}s (what the decoder wrote at that step). Columns: input {unit}s. "
                   "Each row is one softmax over the input and sums to 1.")
        st.plotly_chart(alignment_figure(cross.head(layer, head), cross.tokens, cross.keys, title, colorscale),
                        key="xattn_fig", width="content")
        ga, gb = st.columns([1, 2])
        ga.image(png_bytes(grid_image(cross.overview(110), cell=110, colorscale=colorscale)),
                 caption="All cross-attention heads: rows are decoder layers, columns heads (output down, input "
                         "across, stretched to squares).")
        # Downloads are made on click, from these arrays (not from the result, which a session must not keep).
        weights, matrix, outs, ins = cross.weights, cross.head(layer, head), cross.tokens, cross.keys
        head_stem = f"{stem}_cross_layer{layer}_head{head}"
        download_strip([
            Download("Alignment", "png", head_stem, lambda: labelled_heatmap(matrix, outs, ins, title, colorscale)),
            Download("Cross-attention", "npy", f"{stem}_cross", lambda: weights,
                     help="All heads, [layer, head, output, input], float32."),
            Download("Alignment", "csv", head_stem, lambda: matrix_csv(matrix, outs, ins)),
        ], key="dl_xattn")

    with tab_graph:
        ka, kb = st.columns([1, 2])
        k = ka.slider(f"Lines per output {unit} (strongest first)", 1, 5, 2, key="xattn_topk")
        scope = kb.radio("Heads", ["head", "layer"], horizontal=True, key="xattn_graph_heads",
                         format_func={"head": "The chosen head", "layer": "Every head of the layer"}.get)
        heads = [head] if scope == "head" else list(range(cross.n_heads))
        g = head_graph(cross.layer(layer)[heads], cross.tokens, cross.keys, EdgeRule("top_k", k), heads=heads,
                       title=f"{name} · cross-attention · layer {layer} · "
                             + (f"head {head}" if scope == "head" else "all heads"), sides=("output", "input"))
        st.plotly_chart(graph_figure(g), key="xattn_graph", width="content")
        st.caption(f"The alignment above as lines: each output {unit} to the input {unit}s it attends most. "
                   "One colour per head; opacity follows the weight. Click a head in the legend to hide it.")

    with tab_enc:
        enc_layer = st.columns([1, 2])[0].selectbox("Encoder layer", range(result.n_layers), key="xattn_enc_layer",
                                                    format_func=lambda i: f"L{i}")
        st.plotly_chart(alignment_figure(result.head(enc_layer, head), result.tokens, result.tokens,
                                         f"{name} · encoder · layer {enc_layer} · head {head}", colorscale,
                                         row_title="query", col_title="key"), key="xattn_enc_fig", width="content")

    with tab_dec:
        st.caption(f"Causal: the step that writes an output {unit} sees only the {unit}s written before it. "
                   f"Rows: the {unit} each step writes; columns: what each step reads (the start token first).")
        st.plotly_chart(alignment_figure(decoder.head(layer, head), decoder.tokens, decoder.keys,
                                         f"{name} · decoder self-attention · layer {layer} · head {head}",
                                         colorscale, row_title="writes", col_title="reads"),
                        key="xattn_dec_fig", width="content")

