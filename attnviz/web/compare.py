"""The Compare page: two texts on one model, or one text on two models, side by side, and their difference A − B
on the tokens the two share (paired by a sequence alignment of the token lists)."""
from __future__ import annotations

import numpy as np
import streamlit as st

from attnviz.analysis.aggregate import fused_layer
from attnviz.analysis.compare import (
    align_tokens,
    aligned_difference,
    largest_changes,
    normalise_token,
    relative_layer,
    unpaired,
)
from attnviz.export import matrix_csv
from attnviz.render import heatmap_figure, labelled_heatmap
from attnviz.render.figures import causal_mask, difference_figure
from attnviz.render.raster import difference_heatmap
from attnviz.result import AttentionResult
from attnviz.web import runs, widgets
from attnviz.web.matrix import interactive, matrix_image, token_positions
from attnviz.web.runs import TextRun
from attnviz.web.widgets import Download, download_strip

TEXTS, MODELS = "Two texts, one model", "Two models, one text"
EXAMPLE_A = "The animal didn't cross the street because it was too tired."
EXAMPLE_B = "The animal didn't cross the street because it was too wide."
DEFAULTS = {TEXTS: ("minilm", EXAMPLE_A, "minilm", EXAMPLE_B), MODELS: ("minilm", EXAMPLE_A, "smollm2-135m", EXAMPLE_A)}
HEAD, MEAN = "One head", "Mean over heads"


def matrix(r: AttentionResult, layer: int, head: int, view: str) -> np.ndarray:
    """``[query, key]`` of the chosen view."""
    return r.head(layer, head) if view == HEAD else fused_layer(r, layer, "mean")


def what(r: AttentionResult, layer: int, head: int, view: str) -> str:
    return f"{r.model} · L{layer} " + (f"H{head}" if view == HEAD else f"mean of {r.n_heads} heads")


def main() -> None:
    """The page (results stay local to a run, so nothing a session keeps holds on to them)."""
    st.title("Compare attention")
    st.caption("Two inputs on one model, or one input on two models: both attention maps side by side, and their "
               "difference A − B on the tokens the two share. " + widgets.TEXT_LIMIT_NOTICE)

    mode = st.radio("Compare", [TEXTS, MODELS], horizontal=True, key="cmp_mode")
    run_key = f"cmp_run_{'texts' if mode == TEXTS else 'models'}"
    with st.form(f"{run_key}_form"):
        model_a, text_a, model_b, text_b = st.session_state.get(run_key, DEFAULTS[mode])
        if mode == TEXTS:
            model_a = model_b = widgets.model_picker("text", "cmp_model", model_a)
            left, right = st.columns(2)
            text_a = left.text_area("Text A", value=text_a, height=80, key="cmp_text_a")
            text_b = right.text_area("Text B", value=text_b, height=80, key="cmp_text_b")
        else:
            text_a = text_b = st.text_area("Text", value=text_a, height=80, key="cmp_text")
            left, right = st.columns(2)
            with left:
                model_a = widgets.model_picker("text", "cmp_model_a", model_a, label="Model A")
            with right:
                model_b = widgets.model_picker("text", "cmp_model_b", model_b, label="Model B")
        if st.form_submit_button("Compare", type="primary"):
            st.session_state[run_key] = (model_a, text_a, model_b, text_b)

    model_a, text_a, model_b, text_b = st.session_state.get(run_key, DEFAULTS[mode])
    results = {}
    for side, name, text in (("A", model_a, text_a), ("B", model_b, text_b)):
        try:
            runs.load_with_progress(name)
            results[side] = runs.result_with_progress(TextRun(name, text))
        except ValueError as e:
            widgets.show_value_error(ValueError(f"Text {side} ({name}): {e}"))
    if len(results) < 2:
        st.stop()
    ra, rb = results["A"], results["B"]

    for side, r in (("A", ra), ("B", rb)):
        st.caption(f"**{side}** · **{r.model}** · {r.n_layers} layers × {r.n_heads} heads · {r.n_tokens:,} tokens · "
                   + ("causal (decoder)" if r.causal else "bidirectional (encoder)")
                   + (" · ✂️ cut to the model's limit" if r.truncated else ""))

    same_model = ra.model == rb.model
    alignment = align_tokens(ra.tokens, rb.tokens, key=None if same_model else normalise_token)

    # Which heads are compared. One model: the same layer and head on both sides. Two models: layer indices and head
    # numbers mean different things, so each side has its own layer (by default the same relative depth) and head.
    c = st.columns([3, 3, 3, 4])
    view = c[0].radio("View", [HEAD, MEAN], key=f"cmp_view_{run_key}", index=0 if same_model else 1,
                      help="Heads of two different models do not correspond one to one; their means over heads do "
                           "compare like with like.")
    layer_a = c[1].selectbox(f"Layer{'' if same_model else ' (A)'}", range(ra.n_layers), index=ra.n_layers // 2,
                             key=f"cmp_layer_a_{ra.model}", format_func=lambda i: f"L{i}")
    head_a = head_b = 0
    if view == HEAD:
        head_a = c[2].selectbox(f"Head{'' if same_model else ' (A)'}", range(ra.n_heads), key=f"cmp_head_a_{ra.model}",
                                format_func=lambda i: f"H{i}")
    if same_model:
        layer_b, head_b = layer_a, head_a
    else:
        depth = c[3].toggle("B at the same relative depth", value=True, key="cmp_depth",
                            help="Layer B = layer A scaled to B's depth (first to first, last to last).")
        d = st.columns([3, 3, 3, 4])
        if depth:
            layer_b = relative_layer(layer_a, ra.n_layers, rb.n_layers)
            d[1].markdown(f"Layer (B): **L{layer_b}** of {rb.n_layers} (A: L{layer_a} of {ra.n_layers})")
        else:
            layer_b = d[1].selectbox("Layer (B)", range(rb.n_layers), index=rb.n_layers // 2,
                                     key=f"cmp_layer_b_{rb.model}", format_func=lambda i: f"L{i}")
        if view == HEAD:
            head_b = d[2].selectbox("Head (B)", range(rb.n_heads), key=f"cmp_head_b_{rb.model}",
                                    format_func=lambda i: f"H{i}")
    renorm = st.toggle("Renormalise rows over the shared tokens", value=False, key="cmp_renorm",
                       help="Rescale each row of A and of B to sum to 1 over the shared keys before subtracting, so "
                            "attention paid to tokens only one side has does not count.")
    ma, mb = matrix(ra, layer_a, head_a, view), matrix(rb, layer_b, head_b, view)
    top = float(max(ma.max(), mb.max()))  # one colour range for both sides
    chart = interactive(max(ra.n_tokens, rb.n_tokens), "cmp_interactive")
    left, right = st.columns(2)
    for col, side, r, m, layer, head in ((left, "A", ra, ma, layer_a, head_a), (right, "B", rb, mb, layer_b, head_b)):
        title, masked = f"{side} · {what(r, layer, head, view)}", causal_mask(r.n_tokens) if r.causal else None
        with col:
            st.subheader(f"{side}: {what(r, layer, head, view)}")
            if chart:
                st.plotly_chart(heatmap_figure(m, r.tokens, r.tokens, title, zmax=top, masked=masked),
                                key=f"cmp_fig_{side}")
            else:
                matrix_image(labelled_heatmap(m, r.tokens, r.tokens, title, masked=masked, vmax=top),
                                        r.n_tokens, f"{side}: {r.n_tokens} × {r.n_tokens} cells, queries down, keys "
                                                    f"across, in the order of {side}'s tokens under \"Tokens by "
                                                    "position\".")
    if not chart:
        token_positions("cmp_token_positions", {"A": ra.tokens, "B": rb.tokens,
                                                           "A − B (token pairs)": alignment.labels})

    st.subheader("Difference A − B")
    if same_model:
        st.caption("Tokens are paired by a sequence alignment of the two token lists (longest common runs, in order), "
                   "so an inserted or changed word shifts the later tokens but they still pair up.")
    else:
        st.caption("The two tokenizers split the text differently. Tokens are paired where both produce the same piece "
                   "of text, in order (ignoring case, leading spaces and the ## mark); special tokens and words split "
                   "differently have no partner and are left out, rather than guessed. Labels are A's tokens; "
                   "the pairs are listed under *Token pairs*.")
        if ra.causal != rb.causal:
            causal_side, other = ("A", "B") if ra.causal else ("B", "A")
            st.caption(f"{causal_side} is causal: above the diagonal its weights are 0 by construction, so there the "
                       f"difference is {other}'s attention to later tokens. Decoders often put much of each row on the "
                       "first token (an 'attention sink'), encoders on [CLS] and [SEP].")
    st.caption(f"{alignment.n} token pairs; not paired: {ra.n_tokens - alignment.n} of A's tokens, "
               f"{rb.n_tokens - alignment.n} of B's. "
               "Red: A attends more; blue: B attends more; white: the same"
               + ("; grey: masked (causal)." if ra.causal and rb.causal else ".")
               + ("" if renorm else " Raw weights: where one side also attends to unshared tokens, a row of the "
                                    "difference need not sum to 0."))
    if alignment.n == 0:
        st.warning("The two inputs share no token, so there is no difference to show.", icon="↔️")
        st.stop()
    diff = aligned_difference(ma, mb, alignment, renormalise=renorm)
    title = f"A − B · {what(ra, layer_a, head_a, view)} − {what(rb, layer_b, head_b, view)}"
    both_causal = ra.causal and rb.causal  # pairs keep their order, so both sides mask the same cells
    masked = causal_mask(alignment.n) if both_causal else None
    left, right = st.columns([3, 2])
    with left:
        if chart:
            st.plotly_chart(difference_figure(diff, alignment.labels, alignment.labels, title, masked=masked),
                            key="cmp_fig_diff")
        else:
            matrix_image(difference_heatmap(diff, alignment.labels, alignment.labels, title, masked),
                                    alignment.n, f"{alignment.n} × {alignment.n} token pairs, in the order listed "
                                                 "under \"Tokens by position\" above (labelled by A's tokens).")
    with right:
        st.markdown(f"**Largest changes** · mean |A − B| = {float(abs(diff).mean()):.4f}")
        st.dataframe(largest_changes(diff, ma, mb, alignment, k=12), hide_index=True, key="cmp_table",
                     column_config={k: st.column_config.NumberColumn(format="%.4f") for k in ("A", "B", "A − B")})
        with st.expander("Token pairs"):
            only_a, only_b = unpaired(alignment)
            st.text("Only in A: " + (", ".join(f"{i}·{ra.tokens[i]}" for i in only_a) or "none"))
            st.text("Only in B: " + (", ".join(f"{j}·{rb.tokens[j]}" for j in only_b) or "none"))
            st.dataframe([{"A": f"{i}·{ra.tokens[i]}", "B": f"{j}·{rb.tokens[j]}"}
                          for i, j in zip(alignment.a.tolist(), alignment.b.tolist(), strict=True)],
                         hide_index=True, key="cmp_pairs")
        stem = f"compare_{runs.digest(model_a, text_a, model_b, text_b)[:10]}_difference"
        labels = alignment.labels
        download_strip([
            Download("Difference", "png", stem, lambda: difference_heatmap(diff, labels, labels, title, masked)),
            Download("Difference", "csv", stem, lambda: matrix_csv(diff, labels, labels)),
            Download("Difference", "npy", stem, lambda: diff,
                     help="[query, key] float32 on the paired tokens, in the order of the CSV."),
        ], key="dl_cmp")
