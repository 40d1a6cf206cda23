"""The Mechanisms page through Streamlit's AppTest (real library): every step of every rule and mask, presets,
edits, multi-head, and bad or extreme numbers shown as messages."""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from attnviz import mechanisms as M
from tests.shown import plain

ROOT = Path(__file__).resolve().parents[1]


TIMEOUT = 120


def mechanisms(**state) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages/3_Mechanisms.py"), default_timeout=TIMEOUT)
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def edit(**cells) -> dict:
    """Data-editor edit state: ``edit(**{"0": {"1": value}})`` sets row 0, column "1"."""
    return {"edited_rows": {int(r): c for r, c in cells.items()}, "added_rows": [], "deleted_rows": []}


def rows(at: AppTest) -> list[list[str]]:
    """Every row of every table on the page, as the strings shown."""
    return [list(map(str, r)) for t in at.table for r in t.value.to_numpy()]


def texts(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [x.value for x in at.latex])


def heatmaps(at: AppTest) -> list[str]:
    """Every SVG heatmap on the page (``st.image`` of SVG markup arrives as a base64 data URL)."""
    prefix = "data:image/svg+xml;base64,"
    return [base64.b64decode(img.url[len(prefix):]).decode() for el in at.get("image") for img in el.proto.imgs
            if img.url.startswith(prefix)]


def cell_texts(svg: str) -> list[str]:
    """The numbers written in a heatmap's cells (the texts centred in them, in reading order)."""
    return re.findall(r'dominant-baseline="central" fill="#(?:000000|ffffff)">([^<]*)</text>', svg)


def shows_matrix(at: AppTest, numbers: list[list[str]]) -> bool:
    """Whether one of the page's heatmaps has exactly these numbers in its cells (row by row)."""
    flat = [x for row in numbers for x in row]
    return any(cell_texts(svg) == flat for svg in heatmaps(at))


def headings(at: AppTest) -> list[str]:
    """Every section heading: ``st.header`` elements and Markdown headings (a step writes its heading, formulas
    and notes as one Markdown element)."""
    return [h.value for h in at.header] + [line.lstrip("#").strip() for m in at.markdown
                                           for line in m.value.splitlines() if line.startswith("#")]


def formulas(at: AppTest) -> list[str]:
    """Every display formula on the page (``$$…$$`` in Markdown, and ``st.latex``)."""
    return [x.value for x in at.latex] + [f for m in at.markdown for f in m.value.split("$$")[1::2]]


def test_classic_example_shows_every_step():
    at = mechanisms()
    assert not at.exception and not at.error
    titles = headings(at)
    for step in ("1 · Scores", "2 · Scaling", "3 · Mask", "4 · Softmax", "5 · Context", "What changes between rules",
                 "Multi-head attention", "a · Project", "b · Split", "c · Concatenate"):
        assert any(t.startswith(step) for t in titles), step
    assert len(formulas(at)) >= 8 and len(heatmaps(at)) >= 4
    t = M.attention(M.CLASSIC.Q, M.CLASSIC.K, M.CLASSIC.V, "scaled_dot")
    assert ["32", "50", "68"] in [cell_texts(svg) for svg in heatmaps(at)]  # the scores' heatmap writes them
    assert M.format_probabilities(t.weights, t.log_weights)[0] in [cell_texts(svg) for svg in heatmaps(at)]
    body = texts(at)
    assert r"s_{00} = 1 \cdot 4 + 2 \cdot 5 + 3 \cdot 6 = 32" in body
    assert "[18.48, 28.87, 39.26]" in body  # the scaling explanation uses the current numbers
    assert ["32", "50", "68"] in rows(at) and ["18.48", "28.87", "39.26"] in rows(at)
    assert ["9.405e-10", "3.067e-05", "0.99997"] in rows(at)  # the weights: tiny, never 0


@pytest.mark.parametrize("rule, mask", [("dot", "causal"), ("scaled_dot", "padding"), ("general", "none"),
                                        ("additive", "causal"), ("mlp", "padding")])
def test_every_rule_and_mask(rule, mask):
    at = mechanisms(mech_rule=rule, mech_mask=mask)
    assert not at.exception and not at.error
    assert len(heatmaps(at)) >= 4


def test_tutorial_preset_shows_the_right_softmax():
    at = mechanisms(mech_preset="tutorial", mech_rule="dot")
    assert not at.exception and not at.error
    assert ["31", "41", "51"] in rows(at)
    assert ["2.061e-09", "4.540e-05", "0.99995"] in rows(at)  # not [0.215, 0.366, 0.419], not rounded to 0


def test_random_preset_and_heads():
    at = mechanisms(mech_preset="random", mech_seed=3, mech_heads=2, mech_proj="random")
    assert not at.exception and not at.error
    assert len(at.tabs) >= 2  # one tab per head
    at.session_state["mech_heads"] = 3  # d = 4 is not divisible by 3
    at.run()
    assert not at.exception
    assert at.warning and "not divisible by 3 heads" in at.warning[0].value


@pytest.mark.parametrize("key, state, msg", [
    ("mech_Q_classic_0", edit(**{"0": {"1": "abc"}}), "not a number"),
    ("mech_Q_classic_0", edit(**{"0": {"1": None}}), "empty"),
    ("mech_K_classic_0", {"edited_rows": {}, "added_rows": [{"0": 1.0, "1": 2.0, "2": 3.0}],
                          "deleted_rows": []}, "every key needs"),
    ("mech_V_classic_0", {"edited_rows": {}, "added_rows": [], "deleted_rows": [0, 1, 2]}, "empty"),
])
def test_bad_edits_show_a_message(key, state, msg):
    at = mechanisms(**{key: state})
    assert not at.exception
    assert at.error and msg in at.error[0].value


def test_a_good_edit_moves_the_numbers():
    at = mechanisms(mech_rule="dot", mech_Q_classic_0=edit(**{"0": {"0": 0.0, "1": 0.0, "2": 0.0}}))
    assert not at.exception and not at.error
    assert r"0 \cdot 4 + 0 \cdot 5 + 0 \cdot 6 = 0" in texts(at)  # all scores 0 ...
    assert ["0", "0", "0"] in rows(at) and ["0.3333", "0.3333", "0.3333"] in rows(at)  # ... uniform weights


@pytest.mark.parametrize("rule", ["dot", "scaled_dot", "general", "additive", "mlp"])
def test_huge_numbers_are_a_message_not_a_traceback(rule):
    """1e308 in Q: the scores overflow float64 and the page says so; a rule that stays finite (additive's tanh
    saturates, MLP's ReLU may cut the infinities) shows its steps and says why the dot products cannot be compared."""
    at = mechanisms(mech_rule=rule, mech_Q_classic_0=edit(**{"0": {"0": 1e308, "1": 1e308, "2": 1e308}}))
    assert not at.exception
    if at.error:
        assert "overflowed" in at.error[0].value and "smaller numbers" in at.error[0].value
    else:
        assert rule in ("additive", "mlp") and "overflowed" in texts(at)


def test_a_projection_that_overflows_is_a_message():
    """V near float64's limit is finite, but its seeded random projection V W_v is not: the multi-head section
    says which product overflowed (not that the V the person typed is infinite)."""
    big = {str(r): {str(c): 1.7e308 for c in range(3)} for r in range(3)}
    at = mechanisms(mech_proj="random", mech_V_classic_0=edit(**big))
    assert not at.exception
    assert any("projection V W_v overflowed" in plain(e.value) for e in at.error), [e.value for e in at.error]


def test_weights_below_float64_are_shown_not_rounded_to_0():
    """Q = 50 x the classic query: two dot weights are below 1e-308 (0 in float64); the page writes them from
    their logs, with the same labels as the library, in the table, the heatmap and the worked softmax."""
    q = 50 * M.CLASSIC.Q
    at = mechanisms(mech_rule="dot", mech_Q_classic_0=edit(**{"0": {str(j): float(x) for j, x in enumerate(q[0])}}))
    assert not at.exception and not at.error
    t = M.attention(q, M.CLASSIC.K, M.CLASSIC.V, "dot")
    labels = M.format_probabilities(t.weights, t.log_weights)[0]
    assert t.weights[0, 0] == 0.0 and "0" not in labels
    assert labels in rows(at)
    assert labels in [cell_texts(svg) for svg in heatmaps(at)]
    assert all(M.latex_text(x) in texts(at) for x in labels[:2])


def test_multi_head_shows_every_step():
    """heads=2: projections, each head's slices, weights and context (one head's tab at a time), concatenation and
    output, as titled heatmaps with the library's numbers in their cells."""
    at = mechanisms(mech_preset="random", mech_heads=2, mech_proj="random")
    p = M.random_preset(0)
    mh = M.multi_head_attention(p.Q, p.K, p.V, 2, params=M.random_projections(4, 4, seed=0))
    for h in range(2):
        if h:
            at.session_state["mech_head_tab_2"] = f"Head {h}"
            at.run()
        assert not at.exception and not at.error
        assert [t.label for t in at.tabs] == ["Head 0", "Head 1"]
        # single-head steps, projections, the open head's slices, weights and context, concatenation and output
        assert len(heatmaps(at)) == 4 + 3 + 3 + 2 + 2
        body = texts(at) + html.unescape("".join(heatmaps(at)))  # the panels' titles are in their heatmaps
        assert all(f"{x}_{h} [" in body for x in ("Q'", "K'", "V'"))
        assert not any(f"{x}_{1 - h} [" in body for x in ("Q'", "K'", "V'"))  # the closed head's tab is not drawn
        for part in (mh.Q_proj, mh.K_proj, mh.V_proj, mh.Q_heads[h], mh.K_heads[h], mh.V_heads[h],
                     mh.heads[h].context, mh.concat, mh.output):
            assert shows_matrix(at, M.format_matrix(part))
        t = mh.heads[h]
        assert shows_matrix(at, M.format_probabilities(t.weights, t.log_weights))


@pytest.mark.parametrize("rule", ["dot", "scaled_dot", "general", "additive", "mlp"])
def test_one_head_with_identity_projections_is_the_computation_above(rule):
    at = mechanisms(mech_rule=rule, mech_heads=1, mech_proj="identity")
    assert not at.exception and "exactly the computation above" in texts(at)
    single = M.format_matrix(M.attention(M.CLASSIC.Q, M.CLASSIC.K, M.CLASSIC.V, rule).context)
    assert cell_texts(heatmaps(at)[-1]) == [x for row in single for x in row]  # the output, last on the page


def test_fully_masked_rows_are_an_error_not_a_traceback():
    at = mechanisms(mech_mask="padding", mech_padded_3=[0, 1, 2])
    assert not at.exception
    assert at.error and "every key masked" in at.error[0].value
