"""Text view *Generation*: a causal model continues the text (greedy, or sampled with a seed; up to 64 new tokens;
*Stop* ends it early), then the person steps through the generated tokens: for each, the attention rows that
produced it (every head, over everything before it) and its gradient relevance over that prefix.

What a session keeps is the token ids (``text_generation`` in session state), never a result: the rows come from the
model's run on the whole sequence (:class:`attnviz.web.runs.IdsRun`, cached like every run), which equals the
attention at the step that produced each token (:mod:`attnviz.models.generate`).

Stopping: while the model generates, the page shows each new token; a click on *Stop* (or on anything else) makes
Streamlit end this script run at the next token shown, and the tokens generated so far are kept.
"""
from __future__ import annotations

import streamlit as st

from attnviz.export import head_rows_csv, measures_csv
from attnviz.models.generate import MAX_NEW_TOKENS, Generation, generate
from attnviz.models.relevance import TEXT_MAX_TOKENS
from attnviz.render.explain import head_rows_image
from attnviz.render.summary import profile_figure, top_keys
from attnviz.web import explain
from attnviz.web.runs import IdsRun, get_local_model, limited
from attnviz.web.text.context import TextContext
from attnviz.web.widgets import Download, download_strip, md_literal, show_value_error

LABEL = "Generation"
STATE = "text_generation"
"""Session state: ``{"run": run key, "ids": [...], "n_prompt": int, "probabilities": [...], "stopped": str | None,
"settings": str}``; ``stopped`` is None while the model is generating."""
STOPPED = {"eos": "the model ended its text", "length": "the number of new tokens asked for was reached",
           "callback": "stopped", "you": "you stopped it"}
PROFILE_KEYS = 24
"""The bars show at most this many tokens before the generated one (the strongest in either measure)."""


def shown_text(text: str) -> str:
    """Text for one line of Markdown, shown as it is: line breaks as ``↵`` (a paragraph break would end the bold
    of a continuation), every mark escaped."""
    return md_literal(text.replace("\r\n", "\n").replace("\n", " ↵ "))


def _controls() -> tuple[int, bool, float, int]:
    row = st.container(horizontal=True, vertical_alignment="bottom")
    n = row.number_input("New tokens", 1, MAX_NEW_TOKENS, 20, key="gen_tokens", width=140)
    sample = row.toggle("Sample (else greedy)", value=False, key="gen_sample",
                        help="Greedy takes the most probable token at each step. Sampling draws from the "
                             "temperature-scaled distribution with a seeded generator: the same seed gives the same "
                             "text.")
    temperature = row.slider("Temperature", 0.1, 2.0, 1.0, 0.1, key="gen_temperature", disabled=not sample,
                             width=220)
    seed = row.number_input("Seed", 0, 2**31 - 1, 0, key="gen_seed", disabled=not sample, width=140)
    return int(n), bool(sample), float(temperature), int(seed)


def _generate(ctx: TextContext, n: int, sample: bool, temperature: float, seed: int, settings: str) -> None:
    """Generate with the run's text as the prompt, showing each token; the state is updated as tokens come, so a
    stopped run keeps them."""
    run = ctx.run
    try:
        ids = explain.text_ids(run)
    except ValueError as e:
        show_value_error(e)
        return
    state = {"run": run.key, "ids": list(ids), "n_prompt": len(ids), "probabilities": [], "stopped": None,
             "settings": settings}
    st.session_state[STATE] = state
    stop = st.empty()
    stop.button("Stop", key="gen_stop", icon=":material/stop_circle:",
                help="Ends the generation; the tokens generated so far are kept.")
    shown = st.empty()
    prompt_text = shown_text(run.text)

    def on_token(k: int, token: int, label: str, probability: float) -> None:
        state["ids"].append(int(token))
        state["probabilities"].append(float(probability))
        text = get_local_model(run.model).tokenizer.decode(state["ids"][state["n_prompt"]:])
        # a click on Stop ends this script run here, at the next element sent
        shown.markdown(f":grey[{prompt_text}] **{shown_text(text.strip())}** ({k + 1} of {n})")

    try:
        g = limited(generate, get_local_model(run.model), ids=ids, max_new_tokens=n, sample=sample, seed=seed,
                    temperature=temperature, on_token=on_token)
    except ValueError as e:
        del st.session_state[STATE]
        show_value_error(e)
        return
    state["stopped"] = g.stopped
    stop.empty()
    shown.empty()


def show(ctx: TextContext) -> None:
    """The controls and *Generate*, then the text generated and the step through its tokens."""
    result = ctx.result
    st.caption("A causal model continues the text, one token at a time; then step through the tokens it generated: "
               "for each, the attention rows that produced it (every layer and head, over everything before it) "
               "and its gradient relevance (Chefer et al. 2021) over that prefix.")
    if not result.causal:
        st.info(f"{result.model} does not generate text: choose a causal model (smollm2-135m).", icon="ℹ️")
        return
    n, sample, temperature, seed = _controls()
    settings = f"{'sampled, temperature ' + format(temperature, 'g') + ', seed ' + str(seed) if sample else 'greedy'}"
    if st.button("Generate", key="gen_go", type="primary"):
        _generate(ctx, n, sample, temperature, seed, settings)
    state = st.session_state.get(STATE)
    if state is None or state["run"] != ctx.run.key:
        return
    if state["stopped"] is None:  # the script run that generated was ended by a click
        state["stopped"] = "you"
    _steps(ctx, state)


def _steps(ctx: TextContext, state: dict) -> None:
    g = Generation(list(state["ids"]), state["n_prompt"], [], list(state["probabilities"]), state["stopped"])
    model = get_local_model(ctx.run.model)
    new_text = model.tokenizer.decode(g.ids[g.n_prompt:])
    st.markdown(f":grey[{shown_text(ctx.run.text)}] **{shown_text(new_text.strip())}**")  # ** must touch the text
    st.caption(f"{g.n_generated} new tokens ({state['settings']}); {STOPPED[g.stopped]}. Line breaks are shown as ↵.")
    if g.n_generated == 0:
        return
    ids_run = IdsRun(ctx.run.model, tuple(g.ids))
    try:
        with st.spinner("Attention of the whole sequence…"):
            full = ids_run.result()
    except ValueError as e:
        show_value_error(e)
        return
    tokens = list(full.tokens)
    if st.session_state.get("gen_step", 0) >= g.n_generated:  # a shorter generation than the last one
        st.session_state["gen_step"] = 0
    n_prompt = g.n_prompt  # the slider's labels keep these, not the result
    k = 0 if g.n_generated == 1 else st.select_slider(
        "Generated token", range(g.n_generated), key="gen_step",
        format_func=lambda i: f"{i + 1}: {tokens[n_prompt + i]}")
    p = g.position(k)
    rows = g.rows(full, k)  # [layer, head, key] over keys 0 .. p - 1
    label = tokens[p]
    title = f"{full.model} · generated token {k + 1}: {label!r} ({g.probabilities[k]:.1%} when chosen)" \
        if k < len(g.probabilities) else f"{full.model} · generated token {k + 1}: {label!r}"
    st.markdown(f"**{md_literal(repr(label))}**, position {p}" + (f", chosen with probability "
                                                                     f"{g.probabilities[k]:.1%}"
                                                                     if k < len(g.probabilities) else ""))
    before = tokens[:p]
    colorscale = ctx.colorscale
    image = head_rows_image(rows, before, title, colorscale)
    left, right = st.columns([1, 1])
    with left:
        st.image(image, output_format="PNG", width=min(image.width, 640),
                 caption=f"The attention that produced it: row of position {p - 1} in each of the "
                         f"{full.n_layers * full.n_heads} heads (layers top to bottom, heads within a layer), over "
                         f"the {p} tokens before it; each row coloured from 0 to its maximum.")
    relevance = None
    with right:
        if p > TEXT_MAX_TOKENS:
            st.caption(f"Relevance: computed for prefixes of up to {TEXT_MAX_TOKENS} tokens.")
        else:
            try:
                with st.spinner("Gradient relevance…"):
                    rel = explain.generated_relevance(ids_run, p)
                relevance = rel.scores.copy()
                relevance[-1] -= 1.0  # the identity R starts from, at the predicting position
            except ValueError as e:
                st.caption(f"Relevance: not computed. {md_literal(str(e))}")
        measures = {"Relevance": relevance, "Attention, mean of all heads": rows.mean(axis=(0, 1))}
        st.plotly_chart(profile_figure(measures, before, f"what {label!r} depended on",
                                       keys=top_keys(measures, PROFILE_KEYS)), key="gen_fig")
    stem = f"{ctx.stem}_gen{k + 1}"
    download_strip([
        Download("Attention rows", "png", f"{stem}_rows", lambda: image),
        Download("Attention rows", "csv", f"{stem}_rows", lambda: head_rows_csv(rows, before),
                 help="One row per layer and head: the attention of the position that produced this token."),
        Download("Relevance and mean attention", "csv", f"{stem}_relevance", lambda: measures_csv(measures, before)),
    ], key="dl_text_gen")
