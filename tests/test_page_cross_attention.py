"""The Cross-attention page through Streamlit's AppTest (the real date model): the alignment, the line graph,
bad input, inputs without a year, a broken model, and no result kept by the session."""
from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from attnviz.models.registry import model_info, register
from tests.apptest import load_error, page, results_left
from tests.damage import truncate

ROOT = Path(__file__).resolve().parents[1]


TIMEOUT = 120


def cross_page() -> AppTest:
    return AppTest.from_file(str(ROOT / "pages/5_Cross_Attention.py"), default_timeout=TIMEOUT)


def test_cross_attention_page_default():
    at = cross_page().run()
    assert not at.exception and not at.error
    assert at.metric[0].value == "2026-11-21"
    assert len(at.get("plotly_chart")) >= 4  # alignment, line graph, encoder, decoder
    labels = {b.proto.label for b in at.get("download_button")}
    assert {"Alignment (PNG)", "Cross-attention (NPY)", "Alignment (CSV)"} <= labels
    at.selectbox(key="xattn_layer").set_value(0)
    at.selectbox(key="xattn_head").set_value(3)
    at.run()
    assert not at.exception
    assert "layer 0 · head 3" in json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["title"]["text"]


@pytest.mark.parametrize("bad, msg", [("", "empty"), ("21 Nov 2026 ★", "cannot read")])
def test_cross_attention_page_bad_input(bad, msg):
    at = cross_page().run()
    at.text_input(key="xattn_text").set_value(bad)
    next(b for b in at.button if b.label == "Run").click()
    at.run()
    assert not at.exception
    assert at.error and msg in at.error[0].value


def test_cross_attention_page_warns_when_the_input_has_no_year():
    at = cross_page().run()
    assert not any("no year" in c.value for c in at.caption)
    at.text_input(key="xattn_text").set_value("hello there")
    next(b for b in at.button if b.label == "Run").click()
    at.run()
    assert not at.exception and at.metric[0].value  # it still answers with something
    assert any("The input has no year" in c.value and "its output is a guess" in c.value for c in at.caption)


def test_cross_attention_page_example_and_long_input():
    at = cross_page().run()
    at.selectbox(key="xattn_example").set_value("Tue, 4 Jul 1776")
    at.run()  # choosing an example runs it
    assert not at.exception and at.metric[0].value == "1776-07-04"
    assert at.text_input(key="xattn_text").value == "Tue, 4 Jul 1776"
    at.text_input(key="xattn_text").set_value("Nov 21, 2026 " + "x" * 150)
    next(b for b in at.button if b.label == "Run").click()
    at.run()
    assert not at.exception and any("cut" in w.value for w in at.warning)


def test_cross_attention_graph_draws_the_chosen_head():
    """The line graph is the alignment's head (legend H2 only) unless every head of the layer is asked for."""

    def graph_heads(at: AppTest) -> set[str]:
        chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith("-xattn_graph"))
        return {d["name"] for d in json.loads(chart.proto.spec)["data"] if d.get("legendgroup") and d.get("name")}

    at = cross_page().run()
    at.selectbox(key="xattn_head").set_value(2)
    at.run()
    assert not at.exception and graph_heads(at) == {"H2"}
    at.radio(key="xattn_graph_heads").set_value("layer")
    at.run()
    assert not at.exception and graph_heads(at) == {f"H{h}" for h in range(4)}


def test_cross_attention_page_shows_a_broken_model(tmp_path):
    from attnviz.models.seq2seq import ASSETS, load_date_seq2seq

    for suffix in (".safetensors", ".json"):
        shutil.copyfile(ASSETS / f"date-seq2seq{suffix}", tmp_path / f"date-seq2seq{suffix}")
    truncate(tmp_path / "date-seq2seq.safetensors")
    entry = model_info("date-seq2seq")
    register(entry.name, entry.kind, entry.description)(lambda: load_date_seq2seq(tmp_path))
    try:
        assert "incomplete metadata" in load_error(page("5_Cross_Attention.py").run(), "date-seq2seq")
    finally:
        register(entry.name, entry.kind, entry.description)(entry.loader)
    at = page("5_Cross_Attention.py").run()  # the shipped model loads on the next run
    assert not at.exception and not at.error
    assert any(m.value == "2026-11-21" for m in at.metric)


def test_cross_attention_page_keeps_no_result():
    at = AppTest.from_file(str(ROOT / "pages/5_Cross_Attention.py"), default_timeout=TIMEOUT).run()
    assert results_left(at) == 0


def test_the_date_model_alone_needs_no_picker():
    at = cross_page().run()
    assert not at.exception and not at.error
    assert "xattn_model" not in {s.key for s in at.selectbox}


def test_a_local_encoder_decoder_shows_its_cross_attention(local_models):
    """An encoder-decoder folder of $ATTNVIZ_MODELS_DIR (a tiny T5) is offered beside the date model; its
    alignment is its own cross-attention over its tokens, and the date model's notes are not shown."""
    at = cross_page().run()
    assert [o.split(" — ")[0] for o in at.selectbox(key="xattn_model").options] == ["date-seq2seq", "my-t5"]
    at.selectbox(key="xattn_model").set_value("my-t5").run()
    assert not at.exception and not at.error
    assert at.text_input(key="xattn_any_text").value == "The animal didn't cross the street because it was too tired."
    at.text_input(key="xattn_any_text").set_value("The quick brown fox jumps over the lazy dog.")
    next(b for b in at.button if b.label == "Run").click()
    at.run()
    assert not at.exception and not at.error
    from attnviz.web.runs import TextRun

    result = TextRun("my-t5", "The quick brown fox jumps over the lazy dog.").result()
    cross = result.parts["cross"]
    title = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["title"]["text"]
    assert title.startswith("my-t5 · cross-attention · layer 1 · head 0")
    assert at.metric[0].value == (result.extras.output or "(nothing)")
    captions = " ".join(c.value for c in at.caption)
    assert "**my-t5**: encoder 2 layers, decoder 2 layers, 4 heads" in captions
    assert "Rows: output tokens" in captions and "no year" not in captions and "calendar" not in captions
    trace = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]
    assert len(trace["x"]) == len(cross.keys) and len(trace["y"]) == len(cross.tokens)
    z = trace["z"]  # Plotly's typed array: base64 bytes of the matrix
    shown = np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(cross.head(1, 0).shape)
    np.testing.assert_array_equal(shown, cross.head(1, 0))
    assert not [s for s in at.selectbox if s.key == "xattn_example"]  # date examples are the date model's
    at.selectbox(key="xattn_model").set_value("date-seq2seq").run()  # the date model keeps its own date
    assert not at.exception and not at.error and at.metric[0].value == "2026-11-21"
