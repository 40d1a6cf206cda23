"""The landing page and the Text page through Streamlit's AppTest (real app, real MiniLM)."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.text_app import ROOT, TIMEOUT, submit, text_page


def test_landing_page_links_to_pages():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert "attnviz" in at.title[0].value
    assert any("Text" in str(link.proto.label) for link in at.get("page_link"))


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
