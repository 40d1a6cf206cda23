"""The Text page through Streamlit's AppTest (real app, real MiniLM; SmolLM2 for the causal views): the run, the
all-heads grid and its downloads, every tab (focused head, per layer, head view, across layers with ALTI and
relevance, head statistics, faithfulness, generation), the view state carried by the URL, bad or odd input, long
input, a broken model, and no result kept by the session."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from attnviz import load_model
from attnviz.analysis.flow import flow_rows
from attnviz.models.alti import alti
from attnviz.models.faithful import LABELS
from attnviz.models.generate import generate
from attnviz.web import explain, flow
from attnviz.web.faithfulness import PAGE_STEPS
from attnviz.web.runs import TextRun
from attnviz.web.text import VIEWS
from tests.apptest import click, load_error, page, results_left
from tests.shown import plain
from tests.text_app import TIMEOUT, submit, text_page


def ok(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


def downloads(at: AppTest) -> set[str]:
    return {b.proto.label for b in at.get("download_button")}


def graph_title(at: AppTest) -> str:
    return json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["title"]["text"]


def test_text_page_example_shows_all_views_and_exports():
    at = text_page().run()
    assert not at.exception and not at.error
    assert len(at.get("image")) == 1  # the all-heads grid as one image
    charts = at.get("plotly_chart")
    assert len(charts) == 1  # the focused head; other views are computed only when their tab is open
    labels = {b.proto.label for b in at.get("download_button")}
    assert {"Focused head (PNG)", "All heads (PNG)", "Weights (NPY)", "Focused head (CSV)",
            "Tokens (JSON)"} <= labels


def test_per_layer_tab_fuses_heads():
    at = text_page(text_view="Per layer").run()
    assert not at.exception and not at.error
    at.selectbox(key="text_layer").set_value(3)
    at.radio(key="text_fusion").set_value("max")
    at.run()
    assert not at.exception and not at.error
    assert any(h.value == "Layer 3: max over heads" for h in at.subheader)
    [chart] = at.get("plotly_chart")
    assert "layer 3 \\u00b7 max of 12 heads" in chart.proto.spec
    assert {"Layer (PNG)", "Layer (CSV)"} <= {b.proto.label for b in at.get("download_button")}


def test_focus_and_view_controls():
    at = text_page().run()
    at.selectbox(key="text_layer").set_value(4)
    at.selectbox(key="text_head").set_value(7)
    at.toggle(key="text_hide_special").set_value(True)
    at.slider(key="text_threshold").set_value(0.1)
    at.run()
    assert not at.exception and not at.error
    assert any("L4 H7" in h.value for h in at.subheader)
    figure = at.get("plotly_chart")[0].proto.spec
    assert "[CLS]" not in figure and "[SEP]" not in figure


def test_sentence_pair_run():
    at = submit(text_page().run(), "Where is the cat?", "It sleeps on the mat.")
    assert not at.exception and not at.error
    assert "mat" in at.get("plotly_chart")[0].proto.spec


@pytest.mark.parametrize("bad", ["", "   \n  ", "\x00\u200b\x07"])
def test_unusable_text_shows_a_message(bad):
    at = submit(text_page().run(), bad)
    assert not at.exception
    assert at.error and ("empty" in at.error[0].value or "no token" in at.error[0].value)


@pytest.mark.parametrize("odd", ["tab\there\x00nul", "zero\u200bwidth", "\u202eRTL مرحبا שלום", "emoji 😀🚀 👩‍💻"])
def test_odd_unicode_is_shown(odd):
    at = submit(text_page().run(), odd)
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) == 1


def test_long_input_shows_the_matrix_as_an_image_until_interactive_is_on():
    at = submit(text_page().run(), " ".join(["word"] * 300))  # 302 tokens with [CLS] and [SEP]
    assert not at.exception and not at.error
    assert not at.get("plotly_chart")
    grid, head = at.get("image")
    assert "302 × 302 cells" in head.proto.imgs[0].caption
    assert head.proto.imgs[0].url.endswith(".png")  # sent as made, not turned into a JPEG (blurred cells)
    at.toggle(key="text_interactive").set_value(True).run()
    assert not at.exception and len(at.get("image")) == 1
    [chart] = at.get("plotly_chart")
    assert "layer 0 \\u00b7 head 0" in chart.proto.spec  # the focused head, now with hover


def test_megabyte_paste_is_truncated_with_notice():
    at = submit(text_page().run(), "lorem ipsum dolor sit amet " * 40_000)
    assert not at.exception and not at.error
    assert any("cut" in w.value for w in at.warning)


def test_url_reopens_model_text_layer_head_and_view():
    at = text_page(text_model="minilm", text="Cats chase mice.", text_layer="L3", text_head="H7",
                   text_view="Head statistics").run()
    ok(at)
    assert at.selectbox(key="text_layer").value == 3 and at.selectbox(key="text_head").value == 7
    assert "6 tokens" in captions(at)  # [CLS] cats chase mice . [SEP]
    run_wide = {"All heads (PNG)", "Weights (NPY)", "Tokens (JSON)"}
    assert downloads(at) == run_wide | {"Head statistics (CSV)"}  # only the open tab's view runs
    assert len(at.dataframe) == 1


def test_head_view_controls_focus_and_exports():
    at = text_page(text_view="Head view").run()
    ok(at)
    assert {"Head view (PNG)", "Head view (SVG)"} <= downloads(at)
    assert "lines · top 3 per token" in captions(at)
    at.segmented_control(key="graph_heads").set_value([1, 4])
    at.radio(key="graph_rule").set_value("mass")
    at.run()
    at.slider(key="graph_mass").set_value(0.8)
    at.selectbox(key="graph_token").set_value(2)
    at.radio(key="graph_side").set_value("key")
    at.run()
    ok(at)
    text = captions(at)
    assert "80% of each token's attention" in text and "only key 2:" in text
    at.toggle(key="text_hide_special").set_value(True).run()  # fewer tokens: the focus still fits or resets
    ok(at)


def test_head_view_sentence_pair_filter():
    at = submit(text_page(text_view="Head view").run(), "Where is the cat?", "It sleeps on the mat.")
    ok(at)
    for direction in ("A→B", "B→A", "A→A", "B→B"):
        at.radio(key="graph_pair").set_value(direction).run()
        ok(at)
        assert direction in captions(at)
        assert direction in graph_title(at)  # so the PNG and SVG exports say which edges they hold


def test_across_layers_with_full_flow():
    at = text_page(text_view="Across layers").run()
    ok(at)
    assert {"These values (CSV)", "Flow, all tokens (NPY)"} <= downloads(at)
    at.selectbox(key="flow_token").set_value(3).run()
    ok(at)
    spec = at.get("plotly_chart")[0].proto.spec
    assert "Rollout" in spec and "Flow" in spec and "not computed" not in spec


def test_across_layers_long_inputs_compute_one_row_or_refuse():
    at = submit(text_page(text_view="Across layers").run(), "one two three four five six seven eight " * 10)
    ok(at)
    assert "computed for the chosen token only" in captions(at)
    assert "Flow, all tokens (NPY)" not in downloads(at)
    at = submit(at, "one two three four five six seven eight " * 25)  # 202 tokens: one row, after a click
    ok(at)
    assert "not computed" in at.get("plotly_chart")[0].proto.spec
    next(b for b in at.button if b.label.startswith("Compute flow for this token")).click()
    at.run()
    ok(at)
    assert "not computed" not in at.get("plotly_chart")[0].proto.spec
    at.selectbox(key="flow_token").set_value(7).run()  # the click holds for the rest of this input
    ok(at)
    assert not [b for b in at.button if b.label.startswith("Compute flow")]
    assert "not computed" not in at.get("plotly_chart")[0].proto.spec
    text, token = at.text_area(key="text_input").value, 7
    run = TextRun("minilm", text)
    shown = flow.ROWS.get((run.key, token))
    assert shown is not None  # the page kept the row it showed
    np.testing.assert_allclose(shown, flow_rows(run.result().weights, [token])[0], atol=1e-6)
    other = submit(text_page(text_view="Across layers").run(), text)  # another session: a computed row is shared
    other.selectbox(key="flow_token").set_value(token).run()
    assert not [b for b in other.button if b.label.startswith("Compute flow")]
    assert "not computed" not in other.get("plotly_chart")[0].proto.spec
    at = submit(at, "one two three four five six seven eight " * 60)  # 482 tokens: refused, rollout only
    ok(at)
    assert any("not practical" in i.value for i in at.info)
    assert "not computed" in at.get("plotly_chart")[0].proto.spec


def test_head_statistics_every_statistic():
    at = text_page(text_view="Head statistics").run()
    ok(at)
    for stat in ("distance", "prev", "punct"):
        at.selectbox(key="stats_stat").set_value(stat).run()
        ok(at)


def _click_stats_cell() -> None:
    """A page whose statistics heatmap reports a click on layer 4, head 9 (what Plotly sends on a click)."""
    from types import SimpleNamespace

    import streamlit as st

    from attnviz.render.summary import STATS_OVERLAY_TRACE
    from attnviz.web.text import head_statistics

    points = [{"curve_number": STATS_OVERLAY_TRACE, "x": 9, "y": 4}]
    st.session_state["stats_fig"] = SimpleNamespace(selection=SimpleNamespace(points=points))
    head_statistics._on_stats_select()
    st.write(f"L{st.session_state['text_layer']} H{st.session_state['text_head']}")


def test_clicking_a_statistics_cell_focuses_that_head():
    at = AppTest.from_function(_click_stats_cell, default_timeout=TIMEOUT).run()
    ok(at)
    assert at.markdown[0].value == "L4 H9"


def _click_graph_tokens() -> None:
    """A page whose head view reports a click on key token 3, then a click on empty space."""
    from types import SimpleNamespace

    import streamlit as st

    from attnviz.render.graph import KEY_TRACE
    from attnviz.web.text import head_view

    for points in ([{"curve_number": KEY_TRACE, "point_index": 3}], []):
        st.session_state["graph_fig"] = SimpleNamespace(selection=SimpleNamespace(points=points))
        head_view._on_graph_select()
        st.write(f"{st.session_state['graph_token']} {st.session_state.get('graph_side')}")


def test_clicking_a_token_focuses_it_and_empty_space_clears():
    at = AppTest.from_function(_click_graph_tokens, default_timeout=TIMEOUT).run()
    ok(at)
    assert [m.value for m in at.markdown] == ["3 key", "None key"]


def test_text_page_shows_a_broken_model_then_works_and_retries(broken):
    at = page("1_Text.py").run()
    at.selectbox(key="text_model").set_value("broken-text")
    msg = load_error(click(at, "Run"), "broken-text")
    assert "incomplete metadata" in msg  # the cause, from safetensors (not a ValueError)

    at.selectbox(key="text_model").set_value("minilm")
    at.text_area(key="text_input").set_value("A zebra grazes near the quiet river.")
    click(at, "Run")
    assert not at.exception and not at.error
    assert "zebra" in at.get("plotly_chart")[0].proto.spec

    shutil.copyfile(broken["text intact"], broken["text"])  # someone repairs the file: no restart needed
    at.selectbox(key="text_model").set_value("broken-text")
    click(at, "Run")
    assert not at.exception and not at.error
    assert any("broken-text" in c.value for c in at.caption)
    assert "zebra" in at.get("plotly_chart")[0].proto.spec


@pytest.mark.parametrize("view", [v.LABEL for v in VIEWS])
def test_text_page_keeps_no_result(view):
    at = text_page(text_view=view).run()
    submit(at, "A second sentence, so the first result is no longer the current one.")
    assert results_left(at) == 0


PROMPT = "The capital of France is"


def causal_page(view: str) -> AppTest:
    return text_page(text_model="smollm2-135m", text=PROMPT, text_view=view).run()


def test_causal_across_layers_adds_alti_and_the_next_tokens_relevance():
    at = causal_page("Across layers")
    ok(at)
    run = TextRun("smollm2-135m", PROMPT)
    rel = explain.RELEVANCES.get((run.key, "position", 4))  # what the page drew: the last token's prediction
    assert at.selectbox(key="flow_token").value == 4 and rel.label == " Paris" and len(rel.scores) == 5
    assert any(f"(probability {rel.probability:.1%})" in m.value and "Paris" in m.value for m in at.markdown)
    spec = at.get("plotly_chart")[0].proto.spec
    assert "ALTI roll-up" in spec and "Relevance \\u2192 ' Paris'" in spec and "not computed" not in spec
    assert {"These values (PNG)", "These values (CSV)", "ALTI roll-up, all tokens (NPY)"} <= downloads(at)
    np.testing.assert_allclose(explain.ALTIS.get(run.key), alti(load_model("smollm2-135m"), text=PROMPT).rollup,
                               atol=1e-6)  # the roll-up the page drew from


def test_faithfulness_measures_on_a_click_and_names_the_best():
    at = causal_page("Faithfulness")
    ok(at)
    assert not at.get("plotly_chart") and not at.success  # nothing runs before the click
    click(at, next(b.label for b in at.button if b.label.startswith("Measure faithfulness")))
    ok(at)
    run = TextRun("smollm2-135m", PROMPT)
    f = explain.FAITHFULNESS.get(explain.faithfulness_key(run, None, PAGE_STEPS))
    ex = f.explanations  # the next token, scored on the tokens before the last, by every method
    assert ex.label == " Paris" and ex.units == run.result().tokens[:-1] and set(ex.scores) == set(LABELS)
    for c in f.curves:  # every step of 4 units; deletion starts from the whole prompt, insertion ends on it
        assert len(c.fractions) == 5
        assert c.probabilities[0 if c.mode == "deletion" else -1] == pytest.approx(ex.probability, abs=1e-4)
    deletion = min((c for c in f.curves if c.mode == "deletion"), key=lambda c: c.auc)
    assert f"by deletion **{LABELS[deletion.method]}** (area {deletion.auc:.1f})" in at.success[0].value
    assert len(at.get("plotly_chart")) == 1 and len(at.dataframe) == 1
    assert {"Faithfulness curves (PNG)", "Faithfulness curves (CSV)", "Scores of each method (CSV)"} <= downloads(at)
    at.selectbox(key="text_layer").set_value(2).run()  # measured once: shown again without a click
    ok(at)
    assert at.success and not [b for b in at.button if b.label.startswith("Measure")]
    encoder = text_page(text_view="Faithfulness").run()  # MiniLM predicts nothing
    assert any("predicts nothing to explain" in i.value for i in encoder.info)


def test_generation_then_a_step_through_its_tokens():
    at = causal_page("Generation")
    ok(at)
    at.number_input(key="gen_tokens").set_value(3)
    click(at, "Generate")
    ok(at)
    want = generate(load_model("smollm2-135m"), PROMPT, max_new_tokens=3)
    assert at.session_state["text_generation"]["ids"] == want.ids
    assert any("3 new tokens (greedy)" in c and "asked for was reached" in c for c in captions(at).splitlines())
    at.select_slider(key="gen_step").set_value(2).run()
    ok(at)
    chosen = f"position {want.n_prompt + 2}, chosen with probability {want.probabilities[2]:.1%}"
    assert any(chosen in m.value for m in at.markdown)
    assert {"Attention rows (PNG)", "Attention rows (CSV)", "Relevance and mean attention (CSV)"} <= downloads(at)
    assert results_left(at) == 0


# ------------------------------------------------------------------------------------- the local models folder


def test_local_text_folders_are_offered_by_name_and_run(local_models):
    """The folders of $ATTNVIZ_MODELS_DIR holding text models are in the picker (not the encoder-decoder, the
    image model or the link out of the folder), and one runs on the page with its own tokenizer and weights."""
    import attnviz

    at = text_page().run()
    options = at.selectbox(key="text_model").options
    assert {"minilm", "my-bert", "my-gpt2", "broken-bert"} <= set(options)
    assert not {"my-t5", "my-deit", "linked-out"} & set(options)
    at.selectbox(key="text_model").set_value("my-gpt2")
    submit(at, "A small local model reads this.")
    ok(at)
    assert "**my-gpt2** · 2 layers × 4 heads" in captions(at) and "causal (decoder)" in captions(at)
    want = attnviz.load_model(local_models / "my-gpt2").run(text="A small local model reads this.")
    got = TextRun("my-gpt2", "A small local model reads this.").result()
    assert got.tokens == want.tokens
    np.testing.assert_array_equal(got.weights, want.weights)
    linked = text_page(text_model="my-gpt2").run()  # a link reopens it
    ok(linked)
    assert "**my-gpt2** · 2 layers × 4 heads" in captions(linked)


def test_every_view_shows_a_local_model(local_models):
    """Each tab of the Text page on a local causal model (byte-level BPE, no [CLS]/[SEP])."""
    for view in VIEWS:
        at = text_page(text_model="my-gpt2", text_view=view.LABEL, text="A small local model.").run()
        ok(at)
        assert "**my-gpt2** · 2 layers × 4 heads" in captions(at), view.LABEL


def test_a_broken_local_folder_is_a_message_and_the_page_keeps_working(local_models):
    at = text_page().run()
    at.selectbox(key="text_model").set_value("broken-bert")
    msg = load_error(click(at, "Run"), "broken-bert")
    assert "the folder 'broken-bert'" in msg and str(local_models) not in msg  # no server path in the page
    at.selectbox(key="text_model").set_value("my-bert")
    click(at, "Run")
    ok(at)
    assert "**my-bert** · 2 layers × 4 heads" in captions(at)


@pytest.mark.parametrize("value", ["path", "linked-out", "../models/my-bert", "my-bert/../my-bert", "."])
def test_a_link_cannot_open_a_path_or_a_folder_outside_the_models_folder(local_models, text_dir, value):
    """A model in the URL that is not a listed name (a directory's path, a link out of the folder, ``..``) opens
    nothing: the picker falls back to the default model."""
    value = str(text_dir("bert")) if value == "path" else value
    at = text_page(text_model=value).run()
    ok(at)
    assert at.selectbox(key="text_model").value == "minilm" and "**minilm**" in captions(at)


def test_hide_the_sink_drops_the_first_token_and_renormalises():
    """The focused head's CSV keeps the model's weights; the shown matrix has no first token and rows that sum to
    1 over the rest, like "Hide special tokens"."""
    at = text_page(text_model="smollm2-135m").run()
    ok(at)
    at.toggle(key="text_hide_sink").set_value(True).run()
    ok(at)
    [chart] = at.get("plotly_chart")
    spec = json.loads(chart.proto.spec)
    y = spec["data"][0]["y"]
    r = TextRun("smollm2-135m", "The animal didn't cross the street because it was too tired.").result()
    assert len(y) == r.n_tokens - 1 and y[0].startswith("0·") and r.tokens[1].strip() in y[0]
    at.toggle(key="text_hide_special").set_value(True).run()  # nothing special in SmolLM2's text: the same
    ok(at)


def test_a_long_head_zooms_into_a_region_with_hover_values():
    at = submit(text_page().run(), " ".join(["word"] * 400))  # 402 tokens
    ok(at)
    assert not at.get("plotly_chart")
    at.slider(key="text_zoom_rows").set_value((100, 199))
    at.slider(key="text_zoom_cols").set_value((0, 255))
    at.run()
    ok(at)
    [chart] = at.get("plotly_chart")  # a region of at most 256 a side: interactive, at full resolution
    spec = json.loads(chart.proto.spec)
    assert spec["data"][0]["y"][0].startswith("100·") and len(spec["data"][0]["y"]) == 100
    assert len(spec["data"][0]["x"]) == 256 and "queries 100–199, keys 0–255" in spec["layout"]["title"]["text"]
    at.slider(key="text_zoom_cols").set_value((0, 401)).run()  # wider than 256: a full-resolution image
    ok(at)
    assert not at.get("plotly_chart") and "one cell per weight" in at.get("image")[1].proto.imgs[0].caption


def test_weights_past_the_bound_are_not_offered_and_the_page_says_why(monkeypatch):
    import attnviz.web.text.page as text_page_module

    monkeypatch.setattr(text_page_module, "WEIGHTS_MAX_BYTES", 1000)
    at = text_page().run()
    ok(at)
    assert "Weights (NPY)" not in downloads(at) and "All heads (PNG)" in downloads(at)
    assert "download heads one by one" in captions(at)


# ------------------------------------------------------------------------------------- weights or contributions


def plotly_z(at: AppTest, index: int = 0) -> np.ndarray:
    """The first trace's ``z`` of the page's ``index``-th chart (Plotly's typed array: base64 of the matrix)."""
    import base64

    z = json.loads(at.get("plotly_chart")[index].proto.spec)["data"][0]["z"]
    shape = [int(n) for n in str(z["shape"]).split(",")]
    return np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(shape)


def grid_url(at: AppTest) -> str:
    return at.get("image")[0].proto.imgs[0].url  # named by a digest of the PNG's bytes


def test_the_contributions_switch_redraws_the_grid_and_the_focused_head_then_back():
    at = text_page().run()
    ok(at)
    r = TextRun("minilm", "The animal didn't cross the street because it was too tired.").result()
    switch = at.toggle(key="text_contributions")
    assert not switch.value and not switch.disabled
    at.selectbox(key="text_layer").set_value(2)
    at.selectbox(key="text_head").set_value(7)
    at.run()
    weights_grid = grid_url(at)
    np.testing.assert_allclose(plotly_z(at), r.head(2, 7), atol=1e-6)
    at.toggle(key="text_contributions").set_value(True).run()
    ok(at)
    assert grid_url(at) != weights_grid
    np.testing.assert_allclose(plotly_z(at), r.contribution(2, 7), rtol=1e-5, atol=1e-6)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["data"][0]["colorbar"]["title"]["text"] == "contribution"
    assert "contribution" in spec["layout"]["title"]["text"]
    assert any(h.value == "Focused head: L2 H7 · contributions" for h in at.subheader)
    assert "each weight times its key's value norm" in captions(at)
    at.toggle(key="text_contributions").set_value(False).run()
    ok(at)
    assert grid_url(at) == weights_grid
    np.testing.assert_allclose(plotly_z(at), r.head(2, 7), atol=1e-6)
    assert json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]["colorbar"]["title"]["text"] == "weight"


def test_contributions_with_hidden_tokens_and_a_threshold_per_layer():
    """Per layer, with special tokens hidden and a threshold: the mean over heads of the renormalised weights times
    the kept keys' value norms, thresholded."""
    at = text_page(text_view="Per layer").run()
    at.toggle(key="text_contributions").set_value(True)
    at.toggle(key="text_hide_special").set_value(True)
    at.slider(key="text_threshold").set_value(0.2)
    at.selectbox(key="text_layer").set_value(4)
    at.run()
    ok(at)
    r = TextRun("minilm", "The animal didn't cross the street because it was too tired.").result()
    keep = np.flatnonzero(~r.special)
    w = r.layer(4)[:, keep][..., keep]
    c = w / w.sum(-1, keepdims=True) * r.value_norms()[4][:, None, keep]
    want = np.where(c >= 0.2, c, 0).mean(0)
    np.testing.assert_allclose(plotly_z(at), want, rtol=1e-5, atol=1e-6)
    assert any(h.value == "Layer 4: mean over heads · contributions" for h in at.subheader)


def test_head_view_draws_contributions():
    at = text_page(text_view="Head view").run()
    at.toggle(key="text_contributions").set_value(True).run()
    ok(at)
    assert "top 3 per token · contributions" in graph_title(at)
    assert "opacity is the contribution" in captions(at)
    at.radio(key="graph_rule").set_value("threshold").run()
    ok(at)
    assert "contributions ≥ 0.1" in graph_title(at)


@pytest.mark.parametrize("view", [v.LABEL for v in VIEWS])
def test_every_tab_works_with_contributions_on(view):
    """The tabs that show weights show contributions; the others (across layers, statistics, faithfulness,
    generation) keep their own measures and still run."""
    at = text_page(text_view=view).run()
    at.toggle(key="text_contributions").set_value(True).run()
    ok(at)


def test_a_model_without_value_norms_shows_the_switch_disabled(local_models):
    """my-gpt2 (GPT-2's Conv1D output projection is not a linear layer) reports no value norms: the switch is off
    and disabled, with the reason; a choice made for MiniLM does not carry over."""
    at = text_page().run()
    at.toggle(key="text_contributions").set_value(True).run()
    ok(at)
    at.selectbox(key="text_model").set_value("my-gpt2")
    submit(at, "A small local model reads this.")
    ok(at)
    assert TextRun("my-gpt2", "A small local model reads this.").result().value_norms() is None
    switch = at.toggle(key="text_contributions")
    assert switch.disabled and not switch.value
    assert "Contributions are not available for **my-gpt2**" in plain(captions(at))
    assert json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]["colorbar"]["title"]["text"] == "weight"
