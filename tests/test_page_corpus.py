"""The Corpus page through Streamlit's AppTest, on a tiny corpus run made in this process (real MiniLM, no Ray):
the heatmap, the table and the focused head's top texts; links that open the Text page on that text and head; a
click or a table row that focuses a head; the URL; only folders under ATTNVIZ_CORPUS_DIR; damaged results."""
from __future__ import annotations

import base64
import json
import shutil
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from attnviz.analysis import head_stats
from attnviz.corpus.per_text import STAT_NAMES
from attnviz.corpus.results import open_results
from tests.apptest import page
from tests.corpus_texts import TEXTS, write_result
from tests.damage import truncate
from tests.shown import plain
from tests.text_app import TIMEOUT, text_page


@pytest.fixture(scope="module")
def root(tmp_path_factory, minilm):
    """A corpus root with one run of :data:`TEXTS` (35 read, 1 skipped) in ``runs/demo``."""
    root = tmp_path_factory.mktemp("corpus_root")
    write_result(root / "runs" / "demo", minilm)
    return root


@pytest.fixture()
def corpus_page(root, monkeypatch):
    monkeypatch.setenv("ATTNVIZ_CORPUS_DIR", str(root))
    return page("6_Corpus.py")


def ok(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def plotly_array(value) -> np.ndarray:
    """An array of a Plotly figure's JSON: a list, or Plotly's typed array ``{"dtype", "bdata", "shape"}``."""
    if isinstance(value, dict):
        shape = tuple(int(n) for n in str(value["shape"]).split(","))
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).reshape(shape)
    return np.asarray(value)


def captions(at: AppTest) -> str:
    return "\n".join(plain(c.value) for c in at.caption)


def test_results_show_heatmap_table_and_top_texts(corpus_page, root, minilm):
    at = corpus_page.run()
    ok(at)
    assert at.selectbox(key="corpus_run").options == ["runs/demo"]
    assert "35 texts · 1 skipped" in captions(at)
    r = open_results(root, "runs/demo")
    table = at.dataframe[0].value
    assert len(table) == 6 * 12 and list(table.columns) == ["layer", "head", *STAT_NAMES]
    for stat in STAT_NAMES:
        np.testing.assert_array_equal(table[stat].to_numpy().reshape(6, 12), r.grid(stat))
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    np.testing.assert_array_equal(plotly_array(fig["data"][0]["z"]), r.grid("entropy"))  # the default statistic
    assert {b.proto.label for b in at.get("download_button")} == {"Heatmap (PNG)", "All statistics (CSV)",
                                                                  "Top texts (CSV)"}

    at.selectbox(key="corpus_stat").set_value("prev")
    at.selectbox(key="corpus_measure").set_value("std")
    at.selectbox(key="corpus_layer").set_value(2)
    at.selectbox(key="corpus_head").set_value(7).run()
    ok(at)
    np.testing.assert_array_equal(at.dataframe[0].value["prev"].to_numpy().reshape(6, 12), r.grid("prev", "std"))
    assert at.subheader[-1].value == "L2 H7: Share to the previous token"
    top = at.dataframe[1].value
    assert len(top) == 3 and list(top["rank"]) == [1, 2, 3]
    assert list(top["value"]) == sorted(top["value"], reverse=True)
    # The best text's value is the Python API's statistic of that text for that head.
    best = TEXTS[int(top["id"][0])]
    assert top["text"][0] == best
    result = minilm.run(text=best)
    want = head_stats(result.weights, result.tokens, result.special).get("prev")[2, 7]
    assert abs(top["value"][0] - want) < 1e-5


def test_a_top_text_link_opens_it_on_the_text_page_with_that_head(corpus_page):
    at = corpus_page
    at.query_params.update({"corpus_layer": "L4", "corpus_head": "H9", "corpus_stat": "Share to [SEP]"})
    at.run()
    ok(at)
    top = at.dataframe[1].value
    link = urlsplit(top["open"][0])
    assert link.path == "Text" and not link.netloc  # relative: the app's own Text page, wherever it is served
    params = dict(parse_qsl(link.query))
    assert params == {"text_model": "minilm", "text": top["text"][0], "text_layer": "L4", "text_head": "H9",
                      "text_view": "Focused head"}
    text = text_page(**params).run()
    assert not text.exception and not text.error
    assert text.text_area(key="text_input").value == top["text"][0]
    assert text.selectbox(key="text_layer").value == 4 and text.selectbox(key="text_head").value == 9
    assert {"Focused head (PNG)", "Focused head (CSV)"} <= {b.proto.label for b in text.get("download_button")}


def test_url_reopens_the_view_and_refuses_what_is_not_listed(corpus_page):
    at = corpus_page
    at.query_params.update({"corpus_run": "runs/demo", "corpus_stat": "Share to punctuation",
                            "corpus_measure": "largest over the texts", "corpus_layer": "L5", "corpus_head": "H11"})
    at.run()
    ok(at)
    assert (at.selectbox(key="corpus_stat").value, at.selectbox(key="corpus_measure").value) == ("punct", "max")
    assert (at.selectbox(key="corpus_layer").value, at.selectbox(key="corpus_head").value) == (5, 11)
    for bad in ("../runs/demo", "/etc", "runs/../runs/demo", "runs"):
        other = page("6_Corpus.py")
        other.query_params["corpus_run"] = bad
        other.run()
        ok(other)  # not a choice: the first listed run opens instead, and the URL forgets the value
        assert other.selectbox(key="corpus_run").value == "runs/demo"
        assert other.query_params.get("corpus_run") in (None, "runs/demo", ["runs/demo"])


def _click_heatmap_then_table() -> None:
    """What the page's callbacks do with a click on the heatmap's cell (layer 3, head 5), then a table row."""
    from types import SimpleNamespace

    import streamlit as st

    from attnviz.render.summary import STATS_OVERLAY_TRACE
    from attnviz.web import corpus

    points = [{"curve_number": STATS_OVERLAY_TRACE, "x": 5, "y": 3}]
    st.session_state["corpus_fig"] = SimpleNamespace(selection=SimpleNamespace(points=points))
    corpus._on_heatmap_select()
    st.write(f"L{st.session_state['corpus_layer']} H{st.session_state['corpus_head']}")
    st.session_state["corpus_table"] = SimpleNamespace(selection=SimpleNamespace(rows=[12 * 4 + 10]))
    corpus._on_table_select(12)
    st.write(f"L{st.session_state['corpus_layer']} H{st.session_state['corpus_head']}")


def test_a_click_on_the_heatmap_or_a_table_row_focuses_that_head():
    at = AppTest.from_function(_click_heatmap_then_table, default_timeout=TIMEOUT).run()
    ok(at)
    assert [m.value for m in at.markdown] == ["L3 H5", "L4 H10"]


def test_no_results_says_how_to_make_them(tmp_path, monkeypatch):
    for root in (tmp_path / "empty", tmp_path / "missing"):
        (tmp_path / "empty").mkdir(exist_ok=True)
        monkeypatch.setenv("ATTNVIZ_CORPUS_DIR", str(root))
        at = page("6_Corpus.py").run()
        ok(at)
        assert "No corpus results in" in plain(at.info[0].value) and "python -m attnviz corpus" in at.info[0].value
        assert not at.dataframe


def test_damaged_results_are_a_message(root, tmp_path, monkeypatch):
    bad_root = tmp_path / "corpus"
    shutil.copytree(root / "runs" / "demo", bad_root / "cut")
    truncate(bad_root / "cut" / "heads.parquet")
    shutil.copytree(root / "runs" / "demo", bad_root / "json")
    (bad_root / "json" / "corpus.json").write_text("{not json")
    monkeypatch.setenv("ATTNVIZ_CORPUS_DIR", str(bad_root))
    for name in ("cut", "json"):
        at = page("6_Corpus.py")
        at.query_params["corpus_run"] = name
        at.run()
        assert not at.exception
        assert len(at.error) == 1 and f"The corpus results '{name}' cannot be read" in plain(at.error[0].value)
        assert not at.dataframe
