"""The Mechanisms page: how attention is computed, step by step, with correct numbers you can edit (float64,
:mod:`attnviz.mechanisms`): scores by five rules, scaling, masks, softmax, context, the rules compared, and
multi-head attention (two fragments, so changing the heads reruns only that section)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import streamlit as st

from attnviz import mechanisms as M
from attnviz.mechanisms import explain
from attnviz.render.matrix import value_heatmap
from attnviz.web import widgets

PRESETS = {"classic": "Classic: Q = [1, 2, 3]", "tutorial": "Softmax of [31, 41, 51]", "random": "Random (seeded)"}
MASKS = {"none": "No mask", "causal": "Causal", "padding": "Padding"}


def prose(*parts: str) -> None:
    """Headings, formulas and text as one Markdown element (``$$…$$`` is KaTeX, as in ``st.latex``).

    Every element is a message to the browser, and each message that arrives on its own re-renders the page there.
    Under load a script run's messages trickle in, so a step writes its heading, formulas and notes together."""
    st.markdown("\n\n".join(p for p in parts if p))


def heading(title: str, level: int = 2) -> str:
    return f"{'#' * level} {title}"


def formulas(*lines: str) -> str:
    """Display formulas, one per line, for :func:`prose`."""
    return "\n\n".join(f"$$\n{line}\n$$" for line in lines)


def table(matrix: np.ndarray, rows: list[str], cols: list[str], text: list[list[str]] | None = None,
          width: str = "stretch") -> None:
    """A small table of formatted numbers (strings, so nothing is re-rounded by the browser)."""
    st.table(pd.DataFrame(text or M.format_matrix(matrix), index=rows, columns=cols), width=width)


def heatmap(matrix: np.ndarray, rows: list[str], cols: list[str], weights: bool = False,
            text: list[list[str]] | None = None, title: str = "") -> None:
    """The matrix as an SVG heatmap with every number in its cell (cheap for the browser, unlike a Plotly chart)."""
    st.image(value_heatmap(matrix, rows, cols, weights=weights, text=text, title=title, number=M.format_number),
             width="content")


def step(matrix: np.ndarray, rows: list[str], cols: list[str], weights: bool = False,
         text: list[list[str]] | None = None) -> None:
    """One step: its table and its heatmap side by side (one horizontal container: three messages to the browser,
    where columns took five)."""
    with st.container(horizontal=True, gap="large", vertical_alignment="center"):
        table(matrix, rows, cols, text, width="content")
        heatmap(matrix, rows, cols, weights, text)


def weight_labels(t: M.AttentionTrace) -> list[list[str]]:
    """The labels of a trace's softmax weights; a weight that underflowed to 0 in float64 is written from its log."""
    return M.format_probabilities(t.weights, t.log_weights)


def weight_step(t: M.AttentionTrace, rows: list[str], cols: list[str]) -> None:
    """The softmax weights of a trace, as a table beside a heatmap (:func:`weight_labels`)."""
    step(t.weights, rows, cols, weights=True, text=weight_labels(t))


class Panel(NamedTuple):
    """One titled heatmap of :func:`panels`; ``weights`` and ``text`` as for :func:`heatmap`."""
    title: str
    matrix: np.ndarray
    rows: list[str]
    cols: list[str]
    weights: bool = False
    text: list[list[str]] | None = None


def panels(*items: Panel) -> None:
    """Matrices side by side (wrapping when the page is narrow), each a titled heatmap with every number in its
    cell: one message to the browser each, where a column with a title, a table and a heatmap took four."""
    with st.container(horizontal=True, gap="medium"):
        for p in items:
            heatmap(p.matrix, p.rows, p.cols, weights=p.weights, text=p.text, title=p.title)


def names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


# ------------------------------------------------------------------ multi-head
@st.fragment
def multi_head(Q: np.ndarray, K: np.ndarray, V: np.ndarray, rule: str, mask: np.ndarray | None, qn: list[str],
               kn: list[str], dn: list[str]) -> None:
    """The multi-head section. A fragment: changing its projections reruns and redraws only this section; the
    single-head steps above do not depend on them. The heads are a fragment inside it (:func:`heads`)."""
    st.header("Multi-head attention")
    proj = st.radio("Projections W_q, W_k, W_v, W_o", ["identity", "random"], horizontal=True, key="mech_proj",
                    format_func={"identity": "Identity (heads see slices of Q, K, V)",
                                 "random": "Seeded random (as if learned)"}.get)
    if Q.shape[1] != K.shape[1]:
        st.warning(f"Multi-head attention needs Q and K of the same width (here {Q.shape[1]} and {K.shape[1]}).",
                   icon="⚠️")
        return
    params = (M.identity_projections(Q.shape[1], V.shape[1]) if proj == "identity"
              else M.random_projections(Q.shape[1], V.shape[1], seed=0))
    prose(heading("a · Project", 3), formulas(explain.MULTIHEAD_FORMULAS["project"]))
    try:
        projected = M.project(Q, K, V, params)
    except ValueError as e:
        widgets.show_value_error(e)
        return
    dq = names("d", Q.shape[1])
    panels(*(Panel(f"{label} {list(part.shape)}", part, row_names, col_names) for label, part, row_names, col_names
             in zip(("Q' = Q W_q", "K' = K W_k", "V' = V W_v"), projected, (qn, kn, kn), (dq, dq, dn), strict=True)))
    prose(heading("b · Split and attend per head", 3),
          formulas(explain.MULTIHEAD_FORMULAS["split"] + r"\qquad " + explain.MULTIHEAD_FORMULAS["attend"]))
    heads(Q, K, V, rule, mask, params, proj == "identity", qn, kn, dn)


@st.fragment
def heads(Q: np.ndarray, K: np.ndarray, V: np.ndarray, rule: str, mask: np.ndarray | None,
          params: dict[str, np.ndarray], identity: bool, qn: list[str], kn: list[str], dn: list[str]) -> None:
    """Split, attend per head, concatenate, project. A fragment of its own: changing the number of heads or the open
    head reruns only this part (the projections above and the split's formulas do not depend on them)."""
    n_heads = int(st.number_input("Heads", 1, 16, 1, key="mech_heads", width=200))
    try:
        mh = M.multi_head_attention(Q, K, V, n_heads, score=rule, mask=mask, params=params)
    except ValueError as e:
        st.warning(widgets.md_literal(str(e)), icon="⚠️")
        return

    d, dh, dvh = Q.shape[1], Q.shape[1] // n_heads, V.shape[1] // n_heads
    st.markdown(f"d = {d} split into {n_heads} head(s) of d/H = {dh} columns each (values: {V.shape[1]} into "
                f"{dvh}). Each head runs the **{M.RULE_NAMES[rule]}** rule on its slice"
                + (f", so the scaling divides by √{dh} instead of √{d}" if rule == "scaled_dot" and n_heads > 1
                   else "")
                + "." + (" With one head and identity projections this is exactly the computation above."
                         if n_heads == 1 and identity else ""))
    # Only the open head's tab runs (a tab change reruns this fragment): at 16 heads the page would otherwise draw
    # 16 heads' tables and heatmaps at once.
    head_tabs = st.tabs([f"Head {h}" for h in range(n_heads)], key=f"mech_head_tab_{n_heads}", on_change="rerun")
    for h, tab in enumerate(head_tabs):
        if not tab.open:
            continue
        with tab:
            t = mh.heads[h]
            qk_cols, v_cols = names("d", d)[h * dh:(h + 1) * dh], dn[h * dvh:(h + 1) * dvh]
            st.caption(f"Head {h} takes columns {', '.join(qk_cols)} of Q' and K' and {', '.join(v_cols)} of V', "
                       f"and runs the {M.RULE_NAMES[rule]} rule on them. Weights {t.shape_of('weights')}, "
                       f"context {t.shape_of('context')}.")
            slices = (("Q'", mh.Q_heads[h], qn, qk_cols), ("K'", mh.K_heads[h], kn, qk_cols),
                      ("V'", mh.V_heads[h], kn, v_cols))
            panels(*(Panel(f"{label}_{h} {list(part.shape)}", part, row_names, col_names)
                     for label, part, row_names, col_names in slices))
            panels(Panel(f"Weights of head {h} {list(t.weights.shape)}", t.weights, qn, kn, weights=True,
                         text=weight_labels(t)),
                   Panel(f"head_{h}: its context {list(t.context.shape)}", t.context, qn, v_cols))
    prose(heading("c · Concatenate the heads, then project", 3),
          formulas(explain.MULTIHEAD_FORMULAS["concat"] + r"\qquad " + explain.MULTIHEAD_FORMULAS["output"]))
    panels(Panel(f"Concatenation C {list(mh.concat.shape)}", mh.concat, qn, dn),
           Panel(f"Output C W_o {list(mh.output.shape)}", mh.output, qn, dn))


# ------------------------------------------------------------------ the page
def main() -> None:
    """The page: inputs, the single-head steps, the rules compared, then the multi-head section."""
    st.title("Mechanisms: how attention is computed")
    st.caption("Edit the queries Q, keys K and values V, pick a scoring rule and a mask, and follow every step with "
               "its formula and its numbers (float64, 4 significant digits; tiny weights in scientific notation, "
               "never rounded to 0).")

    c = st.container(horizontal=True)  # one element per row of controls (columns are 1 + n)
    preset_id = c.selectbox("Example", list(PRESETS), format_func=PRESETS.get, key="mech_preset")
    seed = int(c.number_input("Seed", 0, 10_000, 0, key="mech_seed", disabled=preset_id != "random", width=180,
                              help="Seed of the random example (and of nothing else)."))
    rule = c.selectbox("Scoring rule", M.RULES, index=M.RULES.index("scaled_dot"), format_func=M.RULE_NAMES.get,
                       key="mech_rule")
    preset = {"classic": M.CLASSIC, "tutorial": M.TUTORIAL}.get(preset_id) or M.random_preset(seed)
    st.caption(f"Example: {preset.description}. Add or delete rows (queries, keys) in the tables; every number can be "
               "edited. K and V need the same number of rows (one value per key).")

    editors = {}
    cols = st.columns(3)
    for col, name, arr, what in zip(cols, "QKV", (preset.Q, preset.K, preset.V),
                                    ("queries [query, d_k]", "keys [key, d_k]", "values [key, d_v]"), strict=True):
        with col:
            st.markdown(f"**{name}** — {what}")
            df = pd.DataFrame(arr, columns=[str(j) for j in range(arr.shape[1])])
            editors[name] = st.data_editor(df, num_rows="dynamic", key=f"mech_{name}_{preset_id}_{seed}",
                                           width="stretch")
    try:
        Q, K, V = (M.read_matrix(editors[n], n) for n in "QKV")
    except ValueError as e:
        widgets.show_value_error(e)
        st.stop()

    m = st.container(horizontal=True, gap="large")
    mask_kind = m.radio("Mask", list(MASKS), format_func=MASKS.get, horizontal=True, key="mech_mask", width="content")
    padded = m.multiselect("Padded keys", list(range(len(K))), default=[len(K) - 1], key=f"mech_padded_{len(K)}",
                           format_func=lambda j: f"k{j}", disabled=mask_kind != "padding",
                           help="Keys that are padding: no query may attend them.")
    query = m.selectbox("Explain query", range(len(Q)), index=len(Q) - 1, format_func=lambda i: f"q{i}",
                        key=f"mech_query_{len(Q)}", help="The query whose numbers the worked formulas use.", width=180)

    mask = None
    if mask_kind == "causal":
        mask = M.causal_mask(len(Q), len(K))
    elif mask_kind == "padding":
        mask = M.padding_mask(len(Q), padded, len(K))

    try:
        trace = M.attention(Q, K, V, score=rule, mask=mask)
    except ValueError as e:
        widgets.show_value_error(e)
        st.stop()

    qn, kn = names("q", len(Q)), names("k", len(K))
    dn = names("d", V.shape[1])

    # ------------------------------------------------------------------ the steps
    prose(heading(f"1 · Scores — {M.RULE_NAMES[rule]}"),
          formulas(explain.SCORE_FORMULAS[rule], *explain.worked_score(trace, query, 0)))
    step(trace.scores, qn, kn)
    if trace.params:
        with st.expander("The rule's parameters (seeded random here; learned in a real model)"):
            for pname, value in trace.params.items():
                st.markdown(f"`{pname}` shape {list(value.shape)}")
                table(np.atleast_1d(value) if value.ndim < 2 else value,
                      [pname] if value.ndim < 2 else names("r", value.shape[0]),
                      names("c", np.atleast_1d(value).shape[-1]))

    if rule == "scaled_dot":
        prose(heading("2 · Scaling"),
              formulas(explain.SCALE_FORMULA + rf"\qquad \sqrt{{d_k}} = \sqrt{{{K.shape[1]}}} = "
                       rf"{M.latex_number(float(np.sqrt(K.shape[1])))}", explain.worked_scale(trace, query, 0)))
        step(trace.scaled_scores, qn, kn)
    else:
        prose(heading("2 · Scaling"), formulas(explain.NO_SCALE_FORMULA))
        st.caption("Only the scaled dot-product divides its scores (by √d_k); this rule passes them on unchanged.")

    prose(heading("3 · Mask"), formulas(explain.MASK_FORMULA), M.mask_note(trace, mask_kind))
    if mask is not None:
        step(trace.masked_scores, qn, kn)

    prose(heading("4 · Softmax over the keys"),
          formulas(explain.SOFTMAX_FORMULA, *explain.worked_softmax(trace, query)))
    st.caption("Subtracting the row maximum m first changes nothing mathematically and keeps exp from overflowing.")
    weight_step(trace, qn, kn)

    prose(heading("5 · Context: the weighted sum of the values"),
          formulas(explain.CONTEXT_FORMULA, explain.worked_context(trace, query)))
    step(trace.context, qn, dn)

    # ------------------------------------------------------------------ what changes between rules
    compared = M.compare_rules(Q, K, V, mask)
    prose(heading("What changes between rules"), M.rule_note(trace, query),
          M.scaling_note(Q, K, mask, query) if Q.shape[1] == K.shape[1] else "",
          f"Weights of query q{query} under every rule (same inputs and mask; seeded parameters):")
    ok = {M.RULE_NAMES[r]: t for r, t in compared.items() if not isinstance(t, str)}
    if ok:
        table(np.array([t.weights[query] for t in ok.values()]), list(ok), kn,
              [M.format_probabilities(t.weights[query], t.log_weights[query])[0] for t in ok.values()])
    for r, v in compared.items():
        if isinstance(v, str):
            st.caption(f"{M.RULE_NAMES[r]}: {v}")
    multi_head(Q, K, V, rule, mask, qn, kn, dn)

