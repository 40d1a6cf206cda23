"""Reading corpus results back, only from inside one root folder (what the Corpus page opens).

A page must not open whatever path a visitor types: :func:`list_results` offers the result folders found under the
root (not following symlinks, never leaving the root), and :func:`open_results` opens only a name from that list.
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from attnviz.corpus.per_text import STAT_NAMES
from attnviz.export import safe_cell

MEASURES = ("mean", "std", "min", "max")
"""Columns of ``heads.parquet`` a page shows per statistic (``std``: population standard deviation over texts)."""
HEADS_COLUMNS = ("layer", "head", "stat", "count", *MEASURES, "hist", "hist_edges")
TOP_COLUMNS = ("layer", "head", "stat", "rank", "id", "value", "query", "key", "text")
RESULT_FILES = ("corpus.json", "heads.parquet", "top.parquet")
MAX_DEPTH = 3
"""Folder levels below the root searched for results."""


@dataclass(frozen=True)
class CorpusResults:
    """The results of one corpus run.

    Attributes:
        name: the folder, relative to the root, with ``/`` separators.
        info: ``corpus.json``.
        heads: ``heads.parquet`` (one row per layer, head, stat).
        top: ``top.parquet`` (one row per layer, head, stat, rank).
    """

    name: str
    info: dict
    heads: pa.Table
    top: pa.Table

    @property
    def shape(self) -> tuple[int, int]:
        """``(layers, heads)``."""
        return int(self.info["layers"]), int(self.info["heads"])

    def grid(self, stat: str, measure: str = "mean") -> np.ndarray:
        """float64 ``[layer, head]`` of one column (``mean``, ``std``, ``min``, ``max``) for statistic ``stat``."""
        _check(stat, measure)
        rows = self.heads.filter(pc.equal(self.heads["stat"], stat))
        out = np.full(self.shape, np.nan)
        out[rows["layer"].to_numpy(), rows["head"].to_numpy()] = rows[measure].to_numpy()
        return out

    def rows(self, measure: str = "mean") -> list[dict[str, float | int]]:
        """One dict per head, layer by layer: ``layer``, ``head`` and every statistic's ``measure``."""
        _check(STAT_NAMES[0], measure)
        grids = {s: self.grid(s, measure) for s in STAT_NAMES}
        n_layers, n_heads = self.shape
        return [{"layer": layer, "head": head, **{s: float(grids[s][layer, head]) for s in STAT_NAMES}}
                for layer in range(n_layers) for head in range(n_heads)]

    def histogram(self, layer: int, head: int, stat: str) -> tuple[np.ndarray, np.ndarray]:
        """``(edges, counts)`` of one head and statistic over the texts (``len(edges) == len(counts) + 1``)."""
        _check(stat)
        row = self._heads_row(layer, head, stat)
        return np.asarray(row["hist_edges"], dtype=np.float64), np.asarray(row["hist"], dtype=np.int64)

    def heads_csv(self) -> str:
        """CSV text, one row per head and statistic: ``layer, head, stat, count, mean, std, min, max``."""
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["layer", "head", "stat", "count", *MEASURES])
        for row in self.heads.select(["layer", "head", "stat", "count", *MEASURES]).to_pylist():
            w.writerow([row["layer"], row["head"], row["stat"], row["count"], *(f"{row[m]:.9g}" for m in MEASURES)])
        return buf.getvalue()

    def top_csv(self, layer: int, head: int, stat: str) -> str:
        """CSV text of :meth:`top_texts`: ``rank, id, value, cells`` (``q>k`` token positions), ``text`` (a text
        that starts like a formula is quoted)."""
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["layer", "head", "stat", "rank", "id", "value", "cells", "text"])
        for t in self.top_texts(layer, head, stat):
            w.writerow([layer, head, stat, t["rank"], t["id"], f"{t['value']:.9g}", cells_label(t),
                        safe_cell(t["text"])])
        return buf.getvalue()

    def _heads_row(self, layer: int, head: int, stat: str) -> dict:
        mask = pc.and_(pc.and_(pc.equal(self.heads["layer"], layer), pc.equal(self.heads["head"], head)),
                       pc.equal(self.heads["stat"], stat))
        rows = self.heads.filter(mask).to_pylist()
        if not rows:
            raise ValueError(f"these results have no layer {layer}, head {head}")
        return rows[0]

    def top_texts(self, layer: int, head: int, stat: str) -> list[dict]:
        """The top texts of one head and statistic, best first: dicts with rank, id, value, query, key, text."""
        _check(stat)
        mask = pc.and_(pc.and_(pc.equal(self.top["layer"], layer), pc.equal(self.top["head"], head)),
                       pc.equal(self.top["stat"], stat))
        rows = self.top.filter(mask).sort_by("rank")
        return rows.select(["rank", "id", "value", "query", "key", "text"]).to_pylist()


def list_results(root: str | Path) -> list[str]:
    """Names (relative to ``root``, ``/``-separated, sorted) of the folders under ``root`` that hold a finished
    corpus run; none reached through a symlink, none outside ``root``. An absent root has none."""
    root = Path(root)
    if not root.is_dir():
        return []
    base = root.resolve()
    found = []
    for folder, dirs, _ in os.walk(base, followlinks=False):
        here = Path(folder)
        depth = len(here.relative_to(base).parts)
        dirs[:] = sorted(d for d in dirs if not (here / d).is_symlink() and d != "parts" and depth < MAX_DEPTH)
        if _is_result(here, base):
            found.append(here.relative_to(base).as_posix() or ".")
    return sorted(found)


def open_results(root: str | Path, name: str) -> CorpusResults:
    """The results in folder ``name`` under ``root``.

    Raises:
        ValueError: ``name`` is not one of :func:`list_results` (a typed path, ``..``, a symlink out...), or its
            files cannot be read as corpus results (damaged, cut short, of another layout).
    """
    if name not in list_results(root):
        raise ValueError(f"No corpus results named {name!r} here: choose one of the listed runs.")
    folder = Path(root).resolve() / name
    try:
        info = json.loads((folder / "corpus.json").read_text(encoding="utf-8"))
        heads, top = pq.read_table(folder / "heads.parquet"), pq.read_table(folder / "top.parquet")
        results = CorpusResults(name=name, info=info, heads=heads, top=top)
        _validate(results)
    except (OSError, ValueError, TypeError, KeyError, pa.ArrowException) as e:  # JSON and Arrow errors included
        raise ValueError(f"The corpus results {name!r} cannot be read ({type(e).__name__}: {e}). Run "
                         "python -m attnviz corpus again into a new folder.") from e
    return results


def cells_label(top: dict) -> str:
    """The token cells of a top text as ``q>k`` pairs: ``"3>0 5>0"`` (query 3 to key 0...)."""
    return " ".join(f"{q}>{k}" for q, k in zip(top["query"], top["key"], strict=True))


def _check(stat: str, measure: str = "mean") -> None:
    if stat not in STAT_NAMES:
        raise ValueError(f"statistic must be one of {STAT_NAMES}, got {stat!r}")
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}, got {measure!r}")


def _validate(r: CorpusResults) -> None:
    """``ValueError`` unless ``r`` has the columns and sizes of a corpus run's results."""
    if not isinstance(r.info, dict):
        raise ValueError("corpus.json is not an object")
    n_layers, n_heads = r.shape
    if n_layers < 1 or n_heads < 1:
        raise ValueError(f"{n_layers} layers, {n_heads} heads")
    for table, columns, name in ((r.heads, HEADS_COLUMNS, "heads"), (r.top, TOP_COLUMNS, "top")):
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise ValueError(f"{name}.parquet has no column {', '.join(missing)}")
    if len(r.heads) != n_layers * n_heads * len(STAT_NAMES):
        raise ValueError(f"heads.parquet has {len(r.heads)} rows, not {n_layers} x {n_heads} x {len(STAT_NAMES)}")
    for table in (r.heads, r.top):
        layer, head = table["layer"].to_numpy(), table["head"].to_numpy()
        if len(table) and not (0 <= layer.min() and layer.max() < n_layers and 0 <= head.min()
                               and head.max() < n_heads):
            raise ValueError("a layer or head out of range")


def _is_result(folder: Path, base: Path) -> bool:
    """All result files present, regular files (not symlinks), inside ``base``."""
    for name in RESULT_FILES:
        p = folder / name
        if p.is_symlink() or not p.is_file() or not p.resolve().is_relative_to(base):
            return False
    return True
