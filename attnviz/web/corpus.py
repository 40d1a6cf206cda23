"""The Corpus page: what each head does across a whole corpus, from the results of ``python -m attnviz corpus``.

Results are read only from folders under one root, :func:`corpus_root` (environment ``ATTNVIZ_CORPUS_DIR``, default
``./corpus``): the page offers the result folders found there (:func:`attnviz.corpus.results.list_results`: no
typed paths, nothing reached through ``..`` or a symlink) and opens the one chosen. Top to bottom: the run's
caption, the statistic and measure, a layers × heads heatmap (a click focuses a head), the sortable table of every
head (a row selection focuses it too), then the focused head: its histogram over the texts and its top texts, each
with a link that opens the text on the Text page with that head focused. The run, statistic, measure, layer and
head are in the URL.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from attnviz.analysis import STATS
from attnviz.corpus.per_text import STAT_NAMES
from attnviz.corpus.results import MEASURES, RESULT_FILES, CorpusResults, cells_label, list_results, open_results
from attnviz.models import list_models
from attnviz.render import labelled_heatmap
from attnviz.render.summary import STATS_OVERLAY_TRACE, histogram_figure, stats_figure
from attnviz.web import widgets
from attnviz.web.runs import RESULT_TTL_S
from attnviz.web.site import PAGES
from attnviz.web.text.head_statistics import COLUMN_LABELS
from attnviz.web.widgets import BIND, Download, download_strip

ROOT_ENV = "ATTNVIZ_CORPUS_DIR"
DEFAULT_ROOT = "corpus"
MEASURE_LABELS = {"mean": "mean over the texts", "std": "standard deviation over the texts",
                  "min": "smallest over the texts", "max": "largest over the texts"}
TEXT_PAGE = next(p.url_path for p in PAGES if p.path == "pages/1_Text.py")
"""URL path of the Text page, which the top texts link to."""
TEXT_VIEW = "Focused head"
"""The Text page's tab a link opens (the label of :mod:`attnviz.web.text.focused_head`)."""


def corpus_root() -> Path:
    """The folder whose result folders the page may open: ``$ATTNVIZ_CORPUS_DIR``, else ``./corpus``."""
    return Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT)


def _stamp(root: Path, name: str) -> tuple[int, ...]:
    """Modification times of a listed result folder's files: a rerun into the same folder opens afresh."""
    folder = root.resolve() / name
    return tuple((folder / f).stat().st_mtime_ns for f in RESULT_FILES)


@st.cache_resource(show_spinner=False, max_entries=8, ttl=RESULT_TTL_S)
def _open(root: str, name: str, stamp: tuple[int, ...]) -> CorpusResults:
    """The results (Arrow tables, read-only, shared by sessions); ``stamp`` is :func:`_stamp`."""
    return open_results(root, name)


def text_link(model: str, text: str, layer: int, head: int) -> str:
    """A link (relative to the app) that opens ``text`` on the Text page with ``model`` and that head focused,
    through the Text page's own URL parameters."""
    return f"{TEXT_PAGE}?" + urlencode({"text_model": model, "text": text, "text_layer": f"L{layer}",
                                        "text_head": f"H{head}", "text_view": TEXT_VIEW})


def _on_heatmap_select() -> None:
    """A click on a cell of the heatmap focuses that head (the layer and head selectors)."""
    state = st.session_state.get("corpus_fig")
    points = (state.selection.points if state else None) or []
    cell = next((p for p in points if p.get("curve_number") == STATS_OVERLAY_TRACE), None)
    if cell is not None:
        st.session_state["corpus_layer"] = int(cell["y"])
        st.session_state["corpus_head"] = int(cell["x"])


def _on_table_select(n_heads: int) -> None:
    """A row chosen in the table (rows are in layer, head order whatever the sorting) focuses that head."""
    state = st.session_state.get("corpus_table")
    rows = (state.selection.rows if state else None) or []
    if rows:
        st.session_state["corpus_layer"], st.session_state["corpus_head"] = divmod(int(rows[0]), n_heads)


def _caption(r: CorpusResults) -> str:
    info = r.info
    n_layers, n_heads = r.shape
    parts = [f"**{widgets.md_literal(str(info.get('model', '?')))}** · {n_layers} layers × {n_heads} heads",
             f"{info.get('texts', 0):,} texts"]
    if info.get("skipped"):
        parts.append(f"{info['skipped']:,} skipped (no token the model reads)")
    if info.get("truncated"):
        parts.append(f"{info['truncated']:,} cut to the model's limit")
    if info.get("tokens"):
        parts.append(f"{info['tokens']:,} tokens")
    source = (info.get("input") or {}).get("path")
    if source:
        parts.append("from " + widgets.md_literal(Path(str(source)).name))
    if info.get("texts_per_second"):
        parts.append(f"{info['texts_per_second']:,.0f} texts/s")
    return " · ".join(parts)


def main() -> None:
    """The page."""
    st.title("Corpus statistics")
    root = corpus_root()
    st.caption("What each head does across many texts, not one: every head statistic of the Text page, over a "
               "whole corpus (after Clark et al. 2019, *What Does BERT Look At?*). Results are made by "
               "`python -m attnviz corpus --model minilm --input texts.txt --out corpus/NAME` and read from the "
               f"folder `{ROOT_ENV}` names (here: {widgets.md_literal(str(root))}). The address bar keeps the "
               "results, statistic, measure, layer and head: copy it to share this view.")
    names = list_results(root)
    if not names:
        st.info(f"No corpus results in {widgets.md_literal(str(root))} yet. Make some with "
                "`python -m attnviz corpus --model minilm --input texts.txt --out DIR` (one text per line), DIR "
                f"a new folder inside it, or set `{ROOT_ENV}` to the folder that holds them.", icon="ℹ️")
        return
    name = st.selectbox("Results", names, key="corpus_run", bind=BIND,
                        help=f"The result folders under {root}: a run of python -m attnviz corpus each.")
    try:
        r = _open(str(root), name, _stamp(root, name))
    except (ValueError, OSError) as e:
        widgets.show_value_error(e if isinstance(e, ValueError) else ValueError(f"{name} cannot be read: {e}"))
        st.stop()
    st.caption(_caption(r))
    if not r.info.get("texts"):
        st.warning("The model could read none of this corpus's texts, so there are no statistics to show.",
                   icon="⚠️")
        return
    n_layers, n_heads = r.shape

    row = st.container(horizontal=True, vertical_alignment="bottom")
    stat = row.selectbox("Statistic", STAT_NAMES, format_func=STATS.get, key="corpus_stat", bind=BIND, width=320)
    measure = row.selectbox("Per head", MEASURES, format_func=MEASURE_LABELS.get, key="corpus_measure", bind=BIND,
                            width=300)
    colorscale = widgets.colorscale_picker("corpus_colorscale", row, width=220)
    layer, head = widgets.layer_head_picker(n_layers, n_heads, "corpus")

    grid = r.grid(stat, measure)
    label = f"{STATS[stat]}, {measure}"
    st.plotly_chart(stats_figure(grid, label, focus=(layer, head), colorscale=colorscale), key="corpus_fig",
                    on_select=_on_heatmap_select, selection_mode="points", config={"displayModeBar": False})
    model = str(r.info.get("model", "corpus"))
    stem = f"{Path(model).name}_{name.replace('/', '_').strip('._') or 'corpus'}"
    download_strip([
        Download("Heatmap", "png", f"{stem}_{stat}_{measure}",
                 lambda: labelled_heatmap(grid, [f"L{i}" for i in range(n_layers)],
                                          [f"H{h}" for h in range(n_heads)], title=f"{model}: {label}",
                                          colorscale=colorscale)),
        Download("All statistics", "csv", f"{stem}_heads", r.heads_csv,
                 help="One row per layer, head and statistic: count, mean, std, min, max over the texts."),
    ], key="dl_corpus_heads")

    st.subheader("Every head")
    st.caption(f"The {MEASURE_LABELS[measure]} of each statistic, one row per head. Click a column header to sort; "
               "choose a row (or click a cell of the heatmap) to focus that head.")
    st.dataframe(pd.DataFrame(r.rows(measure)), hide_index=True, key="corpus_table",
                 on_select=functools.partial(_on_table_select, n_heads), selection_mode="single-row", column_config={
                     "layer": st.column_config.NumberColumn("layer", format="L%d"),
                     "head": st.column_config.NumberColumn("head", format="H%d"),
                     **{s: st.column_config.NumberColumn(COLUMN_LABELS[s], help=STATS[s], format="%.3f")
                        for s in STAT_NAMES}})

    _focused(r, stem, model, layer, head, stat)


def _focused(r: CorpusResults, stem: str, model: str, layer: int, head: int, stat: str) -> None:
    """The focused head: its numbers, histogram and top texts (with links to the Text page)."""
    st.subheader(f"L{layer} H{head}: {STATS[stat]}")
    values = {m: r.grid(stat, m)[layer, head] for m in MEASURES}
    st.caption(f"Over {r.info['texts']:,} texts: mean {values['mean']:.4f}, standard deviation {values['std']:.4f}, "
               f"smallest {values['min']:.4f}, largest {values['max']:.4f}.")
    edges, counts = r.histogram(layer, head, stat)
    st.plotly_chart(histogram_figure(edges, counts, STATS[stat]), key="corpus_hist",
                    config={"displayModeBar": False})

    top = r.top_texts(layer, head, stat)
    linked = model in list_models("text")
    st.markdown(f"**The {len(top)} texts where this head's {STATS[stat].lower()} is largest**")
    st.caption("*cells*: the token positions (query > key) whose attention made most of the value. "
               + ("*Text page* opens the text there with this head focused." if linked else
                  f"These results come from a model the app does not list ({widgets.md_literal(model)}), so the "
                  "texts cannot be opened on the Text page."))
    table = pd.DataFrame({
        "rank": [t["rank"] + 1 for t in top], "value": [t["value"] for t in top], "id": [t["id"] for t in top],
        "text": [t["text"] for t in top], "cells": [cells_label(t) for t in top],
        **({"open": [text_link(model, t["text"], layer, head) for t in top]} if linked else {}),
    })
    st.dataframe(table, hide_index=True, key="corpus_top", column_config={
        "rank": st.column_config.NumberColumn("rank", width="small"),
        "value": st.column_config.NumberColumn(COLUMN_LABELS[stat], format="%.4f", width="small"),
        "id": st.column_config.NumberColumn("id", help="The text's line (or row) in the input, from 0",
                                            width="small"),
        "text": st.column_config.TextColumn("text", width="large"),
        "cells": st.column_config.TextColumn("cells", help="query > key token positions, largest term first"),
        "open": st.column_config.LinkColumn("Text page", display_text="open ↗",
                                            help="Open this text on the Text page with this head focused"),
    })
    download_strip([Download("Top texts", "csv", f"{stem}_L{layer}H{head}_{stat}_top",
                             lambda: r.top_csv(layer, head, stat))], key="dl_corpus_top")
