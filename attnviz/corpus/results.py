"""Reading corpus results back, only from inside one root folder (what the Corpus page opens).

A page must not open whatever path a visitor types: :func:`list_results` offers the result folders found under the
root (not following symlinks, never leaving the root), and :func:`open_results` opens only a name from that list.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from attnviz.corpus.per_text import STAT_NAMES

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
        if stat not in STAT_NAMES:
            raise ValueError(f"statistic must be one of {STAT_NAMES}, got {stat!r}")
        if measure not in ("mean", "std", "min", "max"):
            raise ValueError(f"measure must be mean, std, min or max, got {measure!r}")
        rows = self.heads.filter(pc.equal(self.heads["stat"], stat))
        out = np.full(self.shape, np.nan)
        out[rows["layer"].to_numpy(), rows["head"].to_numpy()] = rows[measure].to_numpy()
        return out

    def top_texts(self, layer: int, head: int, stat: str) -> list[dict]:
        """The top texts of one head and statistic, best first: dicts with rank, id, value, query, key, text."""
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
        ValueError: ``name`` is not one of :func:`list_results` (a typed path, ``..``, a symlink out...).
    """
    if name not in list_results(root):
        raise ValueError(f"No corpus results named {name!r} here: choose one of the listed runs.")
    folder = Path(root).resolve() / name
    info = json.loads((folder / "corpus.json").read_text(encoding="utf-8"))
    return CorpusResults(name=name, info=info, heads=pq.read_table(folder / "heads.parquet"),
                         top=pq.read_table(folder / "top.parquet"))


def _is_result(folder: Path, base: Path) -> bool:
    """All result files present, regular files (not symlinks), inside ``base``."""
    for name in RESULT_FILES:
        p = folder / name
        if p.is_symlink() or not p.is_file() or not p.resolve().is_relative_to(base):
            return False
    return True
