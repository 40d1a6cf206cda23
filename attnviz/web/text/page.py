"""The Text page: a text (or a sentence pair) in, every layer and head of a text model out.

Top to bottom: the input form, the run's caption, the view options (hide special tokens, the sink, colour scale,
threshold, contributions instead of weights),
the all-heads grid (one PNG) with the run's downloads, the focused layer and head, then one tab per view of
:data:`attnviz.web.text.VIEWS` (only the open tab runs). The model, text, layer, head and open tab are in the URL.
"""
from __future__ import annotations

import streamlit as st

from attnviz.export import tokens_json
from attnviz.models.threads import SHORT_KEYS
from attnviz.render import grid_image, png_bytes
from attnviz.render.raster import fit_cell
from attnviz.result import WEIGHTS_MAX_BYTES
from attnviz.web import runs, widgets
from attnviz.web.runs import DERIVED_ENTRIES, RESULT_TTL_S, TextRun
from attnviz.web.text import VIEWS
from attnviz.web.text.context import TextContext, shown_positions, view_attention
from attnviz.web.widgets import BIND, Download, download_strip

EXAMPLE = "The animal didn't cross the street because it was too tired."


@st.cache_data(show_spinner=False, max_entries=DERIVED_ENTRIES * 4, ttl=RESULT_TTL_S)
def grid_png(key: tuple[str, str, str], _run: TextRun, hide_special: bool, minimum: float, colorscale: str,
             hide_sink: bool = False, contributions: bool = False) -> bytes:
    """PNG of all heads (layers x heads) of a cached text run (``key`` is ``_run.key``), with the view options
    (``contributions``: of the norm-based contributions): each head's block maxima at the thumbnail's size
    (:meth:`AttentionResult.overview`), never the full tensor."""
    result = _run.result()
    cell = fit_cell(result.n_layers)  # runs.grid_cell: the size a long run made its overview at
    overview = view_attention(result, hide_special, minimum, hide_sink, contributions).overview(cell)
    return png_bytes(grid_image(overview, cell=cell, colorscale=colorscale), compress_level=1)



def _input() -> TextRun:
    """The form (text, second text, model, Run); the run shown is the last one submitted (else the form's)."""
    widgets.seed_from_url("text_input", "text", EXAMPLE)
    widgets.seed_from_url("text_pair", "pair", "")
    with st.form("text_form"):
        text = st.text_area("Text", height=80, key="text_input")
        row = st.container(horizontal=True, vertical_alignment="bottom")  # one element; columns are 1 + n
        pair = row.text_input("Second text (optional, for sentence pairs)", key="text_pair")
        with row:
            model = widgets.model_picker("text", key="text_model", default="minilm", bind=True)
        if row.form_submit_button("Run", type="primary", width=120):
            st.session_state["text_run"] = (model, text, pair or None)
    return TextRun(*st.session_state.get("text_run", (model, text, pair or None)))


def main() -> None:
    """The page (the result stays local to this run, so nothing a session keeps holds on to it)."""
    st.title("Text attention")
    st.caption("Type a sentence (and optionally a second one, for sentence pairs) and press Run. "
               + widgets.TEXT_LIMIT_NOTICE + " " + widgets.URL_NOTICE)
    run = _input()
    try:
        runs.load_with_progress(run.model)
        result = runs.result_with_progress(run)
    except ValueError as e:
        widgets.show_value_error(e)
        st.stop()
    widgets.set_url_param("text", run.text, default=EXAMPLE)
    widgets.set_url_param("pair", run.pair)

    if result.truncated:
        st.warning(f"The input was longer than the model's limit and was cut to its first {result.n_tokens:,} tokens.",
                   icon="✂️")
    st.caption(f"**{result.model}** · {result.n_layers} layers × {result.n_heads} heads · {result.n_tokens:,} tokens"
               + (" · causal (decoder)" if result.causal else " · bidirectional (encoder)"))

    c = st.container(horizontal=True, vertical_alignment="center", gap="large")
    hide_special = c.toggle("Hide special tokens", value=False, key="text_hide_special",
                            help="Drop [CLS]/[SEP]/[PAD] and renormalise each row over the remaining tokens.")
    hide_sink = c.toggle("Hide the sink", value=False, key="text_hide_sink",
                         help="Drop the first token, where many heads (decoders especially) park much of each row "
                              "whatever it says (an attention sink, Xiao et al. 2023), and renormalise each row "
                              "over the remaining tokens, so the rest of the pattern shows.")
    contributions = widgets.contributions_toggle(result, "text_contributions", c)
    colorscale = widgets.colorscale_picker("text_colorscale", c, width=260)
    minimum = c.slider(f"Threshold (hide {'contributions' if contributions else 'weights'} below)", 0.0, 1.0, 0.0,
                       0.01, key="text_threshold")
    stem = f"{result.model}_{run.key[2][:10]}"
    suffix = "_contrib" if contributions else ""

    st.subheader("All heads: contributions" if contributions else "All heads")
    st.caption("Rows are layers (L), columns are heads (H); each thumbnail is one head, queries down, keys across, "
               "coloured from 0 to that head's maximum"
               + (" contribution (each weight times its key's value norm)" if contributions else "")
               + ". Choose a layer and head below to focus it.")
    shown = shown_positions(result, hide_special, hide_sink)
    if shown is not None and not shown.any():
        st.info("Hiding these tokens leaves none to show: turn an option off.")
        st.stop()
    view = (run.key, run, hide_special, minimum, colorscale, hide_sink, contributions)  # PNG bytes, made once
    with widgets.spinner_if(result.n_tokens > SHORT_KEYS, f"Drawing all {result.n_layers * result.n_heads} heads…"):
        grid = grid_png(*view)
    st.image(grid, output_format="PNG", caption=f"{result.model}: all {result.n_layers * result.n_heads} heads"
             + (", contributions" if contributions else ""))
    items = [Download("All heads", "png", f"{stem}_grid{suffix}", lambda: grid_png(*view))]
    if result.weights_nbytes <= WEIGHTS_MAX_BYTES:
        items.append(Download("Weights", "npy", f"{stem}_weights", lambda: run.result().weights,
                              help="All heads, [layer, head, query, key], float32, as the model computed them."))
    items.append(Download("Tokens", "json", f"{stem}_tokens", lambda: tokens_json(run.result())))
    download_strip(items, key="dl_text_run")
    if result.weights_nbytes > WEIGHTS_MAX_BYTES:
        st.caption(f"All {result.n_layers * result.n_heads} heads of {result.n_tokens:,} tokens would take "
                   f"{result.weights_nbytes / 2**30:.1f} GiB as one file, over the {WEIGHTS_MAX_BYTES / 2**30:.0f} GiB "
                   "bound: download heads one by one (Focused head, CSV), or use the Python API's result.head().")

    layer, head = widgets.layer_head_picker(result.n_layers, result.n_heads, "text")
    attention = view_attention(result, hide_special, minimum, hide_sink, contributions)
    ctx = TextContext(run=run, result=result, attention=attention, tokens=attention.tokens, layer=layer, head=head,
                      hide_special=hide_special, hide_sink=hide_sink,
                      colorscale=colorscale, stem=stem, contributions=contributions)
    tabs = st.tabs([v.LABEL for v in VIEWS], key="text_view", bind=BIND)
    for view_module, tab in zip(VIEWS, tabs, strict=True):
        if tab.open:
            with tab:
                view_module.show(ctx)
