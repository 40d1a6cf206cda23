"""How long headless Chromium takes to draw the Mechanisms page's small heatmaps, with and without Plotly's automargin.

The figures are :func:`attnviz.render.matrix.value_heatmap` of the classic example's steps (scores, scaled scores,
weights, context), twelve in all, as the page draws about a dozen. Each is drawn with Plotly.js (the copy shipped
in the ``plotly`` package, no network) into its own ``<div>``; the time runs from the first ``Plotly.newPlot``
to the frame after the last. "as built" is the figure as the page sends it (automargin off, margins sized for
the labels); "automargin" is the figure as it was before: narrow margins that Plotly's automargin widens, which
draws the chart, measures its tick labels and draws it again.

Usage::

    .venv/bin/python bench/chart_draw.py            # 5 rounds of each (~20 s)

Prints the median and the fastest of each.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from attnviz import mechanisms as M  # noqa: E402
from attnviz.render.matrix import value_heatmap  # noqa: E402
from tests.browser import CHROMIUM, CHROMIUM_ARGS, chromium_missing_reason  # noqa: E402

DRAW = """async (specs) => {
    const root = document.getElementById('root');
    root.innerHTML = '';
    const t0 = performance.now();
    for (const s of specs) {
        const div = document.createElement('div');
        root.appendChild(div);
        await Plotly.newPlot(div, s.data, s.layout);
    }
    await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
    return performance.now() - t0;
}"""


def specs(automargin: bool) -> list[dict]:
    """The twelve figures as Plotly JSON: as built, or (``automargin``) with the narrow margins they had before,
    left for Plotly's automargin to widen."""
    t = M.attention(M.CLASSIC.Q, M.CLASSIC.K, M.CLASSIC.V, score="scaled_dot")
    out = []
    for matrix in (t.scores, t.scaled_scores, t.weights, t.context) * 3:
        m = matrix if matrix.ndim == 2 else matrix[None, :]
        fig = json.loads(value_heatmap(m, [f"q{i}" for i in range(m.shape[0])],
                                       [f"k{j}" for j in range(m.shape[1])]).to_json())
        if automargin:
            fig["layout"]["margin"].update(l=10, t=30)
            fig["layout"]["xaxis"]["automargin"] = fig["layout"]["yaxis"]["automargin"] = True
        out.append(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    reason = chromium_missing_reason()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    import plotly
    from playwright.sync_api import sync_playwright

    plotly_js = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text()
    variants = {"as built": specs(False), "automargin": specs(True)}
    times: dict[str, list[float]] = {name: [] for name in variants}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_content("<html><body><div id='root'></div></body></html>")
        page.add_script_tag(content=plotly_js)
        for _ in range(args.rounds):
            for name, figs in variants.items():
                times[name].append(page.evaluate(DRAW, figs) / 1000)
        browser.close()
    for name, t in times.items():
        print(f"{name}: 12 charts drawn in {statistics.median(t):.3f} s median, {min(t):.3f} s fastest "
              f"(n={len(t)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
