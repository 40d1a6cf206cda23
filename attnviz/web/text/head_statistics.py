"""Text view *Head statistics*: a statistic per head as a layers × heads heatmap (a click focuses that head), the
table of every statistic (sortable) and its CSV (after Clark et al. 2019, *What Does BERT Look At?*)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from attnviz.analysis import STATS, HeadStats, head_stats
from attnviz.analysis.stats import token_masks
from attnviz.cache import BoundedCache
from attnviz.render.summary import STATS_OVERLAY_TRACE, stats_figure
from attnviz.web.runs import DERIVED_ENTRIES, RESULT_TTL_S, TextRun
from attnviz.web.text.context import TextContext
from attnviz.web.widgets import Download, download_strip

LABEL = "Head statistics"
COLUMN_LABELS = {"entropy": "entropy (nats)", "distance": "distance", "cls": "→ [CLS]", "sep": "→ [SEP]",
                 "punct": "→ punct.", "self": "→ self", "prev": "→ previous", "next": "→ next",
                 "sink": "→ first (sink)"}
"""Short table headers of the statistics (the full label is the column's tooltip)."""


STATS_CACHE: BoundedCache[HeadStats] = BoundedCache(
    DERIVED_ENTRIES * 2**20, RESULT_TTL_S, lambda s: sum(s.get(name).nbytes for name in STATS))
"""Statistics by run key, shared by all sessions (not ``st.cache_data``, which would replay the progress bar)."""


def text_head_stats(key: tuple[str, str, str], run: TextRun) -> HeadStats:
    """Statistics of every head of a cached text run (all tokens, special ones included), streamed head by head
    from the result (``key`` is ``run.key``), with a progress bar by layer."""
    cached = STATS_CACHE.get(key)
    if cached is not None:
        return cached
    r = run.result()
    bar = st.progress(0.0, text="Head statistics: layer 0")

    def report(done: int, total: int) -> None:
        bar.progress(done / total, text=f"Head statistics: {done} of {total} layers")

    stats = STATS_CACHE.get_or_compute(key, lambda: head_stats(r, r.tokens, r.special, progress=report))
    bar.empty()
    return stats


def _on_stats_select() -> None:
    """A click on a cell of the statistics heatmap focuses that head (layer and head selectors above)."""
    state = st.session_state.get("stats_fig")
    points = (state.selection.points if state else None) or []
    cell = next((p for p in points if p.get("curve_number") == STATS_OVERLAY_TRACE), None)
    if cell is not None:
        st.session_state["text_layer"] = int(cell["y"])
        st.session_state["text_head"] = int(cell["x"])


def show(ctx: TextContext) -> None:
    """The heatmap of one statistic (select box ``stats_stat``), the table and the CSV."""
    result, layer, head = ctx.result, ctx.layer, ctx.head
    stats = text_head_stats(ctx.run.key, ctx.run)
    st.caption("Per head, averaged over query tokens (after Clark et al. 2019, *What Does BERT Look At?*): "
               "entropy in nats (ln n for uniform attention over n tokens), mean distance Σ w·|i−j| in tokens, "
               "and the share of attention on [CLS], [SEP], punctuation, the token itself, and the previous / next "
               "token. All tokens are used. Click a cell to focus that head.")
    masks = token_masks(result.tokens, result.special)
    if not masks["cls"].any() and not masks["sep"].any():
        st.caption("This input has no [CLS] or [SEP] token, so those shares are 0."
                   + (f" {result.model} is a decoder: such models often put much of each row on the first token "
                      "instead (an 'attention sink')." if result.causal else ""))
    stat = st.columns([2, 3])[0].selectbox("Statistic", list(STATS), format_func=STATS.get, key="stats_stat")
    st.plotly_chart(stats_figure(stats.get(stat), STATS[stat], focus=(layer, head)), key="stats_fig",
                    on_select=_on_stats_select, selection_mode="points", config={"displayModeBar": False})
    st.caption(f"Focused head (outlined): **L{layer} H{head}**, shown in the *Focused head* and *Head view* tabs.")
    table = pd.DataFrame(stats.rows())
    st.dataframe(table, hide_index=True, key="stats_table", column_config={
        "layer": st.column_config.NumberColumn("layer", format="L%d"),
        "head": st.column_config.NumberColumn("head", format="H%d"),
        **{s: st.column_config.NumberColumn(COLUMN_LABELS[s], help=STATS[s], format="%.3f") for s in STATS}})
    download_strip([Download(LABEL, "csv", f"{ctx.stem}_head_stats", stats.csv)], key="dl_text_stats")
