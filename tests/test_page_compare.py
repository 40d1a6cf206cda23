"""The Compare page through Streamlit's AppTest (real models): two texts, two models, long inputs, errors, a
broken model, and no result kept by the session."""
from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.apptest import click, load_error, page, results_left

ROOT = Path(__file__).resolve().parents[1]


TIMEOUT = 300


def compare_page() -> AppTest:
    return AppTest.from_file(str(ROOT / "pages/4_Compare.py"), default_timeout=TIMEOUT)


def difference_spec(at: AppTest) -> str:
    """The difference figure's Plotly JSON, checked to be a diverging heatmap centred on 0."""
    charts = at.get("plotly_chart")
    assert len(charts) == 3  # A, B and the difference
    spec = charts[2].proto.spec
    trace = json.loads(spec)["data"][0]
    assert trace["type"] == "heatmap" and trace["zmin"] == -trace["zmax"] < 0
    assert trace["colorbar"]["title"]["text"] == "A − B"
    return spec


def test_compare_page_defaults_two_texts():
    at = compare_page().run()
    assert not at.exception and not at.error
    difference_spec(at)
    assert any(s.value.startswith("Difference") for s in at.subheader)
    assert {b.proto.label for b in at.get("download_button")} == {"Difference (PNG)", "Difference (CSV)",
                                                                   "Difference (NPY)"}
    at.selectbox(key="cmp_layer_a_minilm").set_value(5)
    at.selectbox(key="cmp_head_a_minilm").set_value(11)
    at.toggle(key="cmp_renorm").set_value(True)
    at.run()
    assert not at.exception and not at.error
    assert any("L5 H11" in s.value for s in at.subheader)


def test_compare_page_empty_text_is_an_error_not_a_traceback():
    at = compare_page().run()
    at.text_area(key="cmp_text_b").set_value("   ")
    next(b for b in at.button if b.label == "Compare").click()
    at.run()
    assert not at.exception
    assert at.error and "Text B" in at.error[0].value and "empty" in at.error[0].value


def test_compare_page_two_models():
    """Loads SmolLM2 through the registry (once per process, shared with tests/test_smollm.py)."""
    at = compare_page().run()
    at.radio(key="cmp_mode").set_value("Two models, one text").run()
    assert not at.exception and not at.error
    assert "causal (decoder)" in " ".join(c.value for c in at.caption)
    assert "smollm2-135m" in difference_spec(at)
    a_fig, b_fig = (json.loads(c.proto.spec) for c in at.get("plotly_chart")[:2])
    assert len(a_fig["data"]) == 1 and b_fig["data"][1]["name"] == "masked"  # B is causal: its mask is drawn
    # Different depths: B follows A's relative depth, or is chosen separately; heads chosen per side.
    at.selectbox(key="cmp_layer_a_minilm").set_value(5).run()
    assert any("smollm2-135m · L29" in s.value for s in at.subheader)
    at.radio(key="cmp_view_cmp_run_models").set_value("One head").run()
    at.toggle(key="cmp_depth").set_value(False).run()
    at.selectbox(key="cmp_layer_b_smollm2-135m").set_value(2).run()
    at.selectbox(key="cmp_head_b_smollm2-135m").set_value(8).run()
    assert not at.exception and not at.error
    assert any("smollm2-135m · L2 H8" in s.value for s in at.subheader)
    difference_spec(at)


def test_compare_page_long_inputs_are_images_until_interactive_is_on():
    """Above 256 tokens A, B and the difference are PNG images (three Plotly charts of ~90,000 cells each would
    take the browser seconds), their tokens listed by position; the toggle brings the charts back."""
    at = compare_page().run()
    at.text_area(key="cmp_text_a").set_value(" ".join(["green"] * 300))  # 302 tokens with [CLS] and [SEP]
    at.text_area(key="cmp_text_b").set_value(" ".join(["green"] * 150 + ["red"] * 150))
    next(b for b in at.button if b.label == "Compare").click()
    at.run()
    assert not at.exception and not at.error
    assert not at.get("plotly_chart")
    images = [img for el in at.get("image") for img in el.proto.imgs]
    assert len(images) == 3 and all(img.url.endswith(".png") for img in images)
    assert [img.caption.split(":")[0] for img in images[:2]] == ["A", "B"]
    assert "token pairs" in images[2].caption
    listed = [t.value for t in at.get("text")]
    assert listed[0].startswith("A: 0·[CLS]   1·green") and listed[1].startswith("B: 0·[CLS]")
    assert listed[2].startswith("A − B (token pairs): 0·[CLS]")
    at.toggle(key="cmp_interactive").set_value(True).run()
    assert not at.exception and not at.get("image")
    difference_spec(at)


def test_compare_page_shows_a_broken_model_and_others_work(broken):
    at = page("4_Compare.py").run()
    at.selectbox(key="cmp_model").set_value("broken-text")
    click(at, "Compare")
    load_error(at, "broken-text")
    assert len(at.error) == 2  # text A and text B
    at.selectbox(key="cmp_model").set_value("minilm")
    click(at, "Compare")
    assert not at.exception and not at.error and at.get("plotly_chart")


def test_compare_page_keeps_no_result():
    at = AppTest.from_file(str(ROOT / "pages/4_Compare.py"), default_timeout=TIMEOUT).run()
    assert results_left(at) == 0


def test_a_local_folder_is_a_model_to_compare(local_models):
    """Two models, one text: a folder of $ATTNVIZ_MODELS_DIR (a tiny BERT) against MiniLM, paired on the tokens
    they share (the same WordPiece vocabulary: all of them)."""
    at = compare_page().run()
    at.radio(key="cmp_mode").set_value("Two models, one text").run()
    names = {option.split(" — ")[0] for option in at.selectbox(key="cmp_model_a").options}
    assert "my-bert" in names and not {"my-t5", "my-deit", "linked-out"} & names
    at.selectbox(key="cmp_model_a").set_value("my-bert")
    at.selectbox(key="cmp_model_b").set_value("minilm")
    click(at, "Compare")
    assert not at.exception and not at.error
    captions = " ".join(c.value for c in at.caption)
    assert "**A** · **my-bert** · 2 layers × 4 heads" in captions
    assert "**B** · **minilm** · 6 layers × 12 heads" in captions
    difference_spec(at)
