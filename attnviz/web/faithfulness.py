"""The *Faithfulness* views of the Text and Image pages: deletion and insertion curves of every explanation method
for the current input and target (:func:`attnviz.models.faithful.faithfulness`), measured only when the person asks
(a button: it runs the model on many perturbed inputs), then kept process-wide
(:data:`attnviz.web.explain.FAITHFULNESS`) so the view shows them on every rerun without asking again.

Shown: the method that did best by each measure, the curves (Plotly), a table of their areas; offered: the curves as
PNG and CSV, and every method's scores of the units as CSV.
"""
from __future__ import annotations

import streamlit as st

from attnviz.analysis.faithfulness import curve_rows
from attnviz.export import measures_csv, records_csv
from attnviz.models.faithful import LABELS, METHODS, Faithfulness
from attnviz.render.explain import curves_figure, curves_image
from attnviz.web import explain
from attnviz.web.runs import ImageRun, TextRun
from attnviz.web.widgets import Download, md_literal, show_value_error

PAGE_STEPS = 20
"""At most this many perturbation steps per curve on the pages (every unit of a prompt of up to 20 tokens):
``bench/explain_eval.py`` takes 64."""

EXPLAINED = ("Which explanation holds up on this input? Each method ranks the {units}. **Deletion** removes the "
             "most relevant first and follows the probability of the target: a faithful ranking makes it fall fast "
             "(a *low* area). **Insertion** starts with every {unit} removed and puts the most relevant back "
             "first (a *high* area is better). {removal} Methods: the last layer's attention (mean over heads), "
             "rollout, flow (where its cost allows), the ALTI roll-up and gradient relevance (Chefer et al. 2021).")


def model_runs(n_units: int, max_steps: int) -> int:
    """About how many perturbed inputs the model runs: each method's two curves share the whole and the empty
    input."""
    steps = min(n_units, max_steps)
    return len(METHODS) * 2 * (steps - 1) + 2


def measure_view(run: TextRun | ImageRun, target: int | None, n_units: int, units: str, title: str, stem: str,
                 key: str) -> list[Download]:
    """The button, then (once measured) the best methods, the curves and the areas; returns the downloads.

    Args:
        target: class index (None: the prediction).
        n_units: how many tokens or patches are removed (for the button's count of model runs).
        units: what they are called (``"prompt tokens"``, ``"patches"``).
        key: the button's widget key; the chart's is ``{key}_fig``.
    """
    f = explain.FAITHFULNESS.get(explain.faithfulness_key(run, target, PAGE_STEPS))
    if f is None:
        label = f"Measure faithfulness (about {model_runs(n_units, PAGE_STEPS)} runs of the model)"
        slot = st.empty()  # the button, then the progress bar
        if not slot.button(label, key=key, type="primary",
                           help=f"Every method's ranking of the {n_units} {units} is tested on the model itself; at "
                                f"most {PAGE_STEPS} steps per curve."):
            return []
        bar = slot.progress(0.0, text="Scoring the input by every method…")

        def report(done: int, total: int) -> None:
            bar.progress(done / total, text=f"Perturbed inputs run: {done} of {total}")

        try:
            f = explain.faithfulness_of(run, target, PAGE_STEPS, report)
        except ValueError as e:
            bar.empty()
            show_value_error(e)
            return []
        bar.empty()
    return _show(f, units, title, stem, key)


def _show(f: Faithfulness, units: str, title: str, stem: str, key: str) -> list[Download]:
    ex = f.explanations
    area = {(c.method, c.mode): c.auc for c in f.curves}
    best = [f"by deletion **{LABELS[f.best['deletion']]}** (area {area[(f.best['deletion'], 'deletion')]:.1f})"
            if f.best.get("deletion") else "",
            f"by insertion **{LABELS[f.best['insertion']]}** (area {area[(f.best['insertion'], 'insertion')]:.1f})"
            if f.best.get("insertion") else ""]
    st.success("Most faithful on this input: " + ", ".join(b for b in best if b) + ".", icon=":material/check_circle:")
    st.caption(f"Target: **{md_literal(repr(ex.label))}**, probability {ex.probability:.1%} on the whole input; "
               f"{len(ex.units)} {units}, {len(f.curves[0].fractions) - 1 if f.curves else 0} steps per curve. "
               "Areas in percentage points of probability.")
    for method, why in ex.skipped.items():
        st.caption(f"{LABELS[method]} left out: {md_literal(why)}.")
    curves = f.curves
    st.plotly_chart(curves_figure(curves, LABELS, title), key=f"{key}_fig")
    table = {"method": [], "deletion area (lower is better)": [], "insertion area (higher is better)": []}
    for m in (m for m in METHODS if m in ex.scores):
        table["method"].append(LABELS[m])
        table["deletion area (lower is better)"].append(round(area.get((m, "deletion"), float("nan")), 2))
        table["insertion area (higher is better)"].append(round(area.get((m, "insertion"), float("nan")), 2))
    st.dataframe(table, hide_index=True)
    scores = {LABELS[m]: s for m, s in ex.scores.items()}
    unit_labels = list(ex.units)
    return [Download("Faithfulness curves", "png", f"{stem}_faithfulness", lambda: curves_image(curves, LABELS, title)),
            Download("Faithfulness curves", "csv", f"{stem}_faithfulness", lambda: records_csv(curve_rows(curves)),
                     help="One row per point: method, mode, step, share of units, probability, the curve's area."),
            Download("Scores of each method", "csv", f"{stem}_explanation_scores",
                     lambda: measures_csv(scores, unit_labels),
                     help=f"Every method's score of each of the {units}, the ranking the curves test.")]
