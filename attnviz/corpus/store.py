"""A corpus run on disk: its manifest, its parts, and the results (Parquet written with pyarrow, plus JSON).

Layout of an output folder::

    run.json              what the run is (model, input hash, sizes, bins): a rerun must match it to resume
    parts/part-<start>-<end>.parquet   the summary of texts start..end-1 (places in the corpus), one per shard
    heads.parquet         one row per (layer, head, stat): count, mean, std, min, max, sum, sumsq, hist, hist_edges
    top.parquet           one row per (layer, head, stat, rank): id, value, query, key (token positions), text
    corpus.json           model, input (path, sha256, texts), counts, time taken, sizes, bins

Every file is written to a temporary name and renamed into place, so a killed run leaves whole files only.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from attnviz.corpus.per_text import STAT_NAMES
from attnviz.corpus.reduce import BINS, Summary

FORMAT = 1
"""Version of this layout (in ``run.json`` and ``corpus.json``)."""
_META = b"attnviz"


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` and rename ``tmp`` to ``path`` (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def write_json(path: Path, data: dict) -> None:
    write_atomic(path, lambda p: p.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8"))


def open_run(out: Path, identity: dict) -> None:
    """Create ``out`` with its ``run.json``, or check that the run already there is the same run.

    Raises:
        ValueError: ``out`` holds another run (another model, input or settings) or files that are not a run.
    """
    manifest = out / "run.json"
    if manifest.is_file():
        old = json.loads(manifest.read_text(encoding="utf-8"))
        differ = [k for k in sorted(set(old) | set(identity)) if old.get(k) != identity.get(k)]
        if differ:
            raise ValueError(f"{out} holds a corpus run with other {', '.join(differ)}: give another --out, or "
                             "delete it to start again")
        return
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not a corpus run folder: give a new or empty folder as --out")
    (out / "parts").mkdir(parents=True, exist_ok=True)
    write_json(manifest, identity)


def part_path(out: Path, start: int, end: int) -> Path:
    """Where the part of corpus places ``start``..``end - 1`` is kept."""
    return out / "parts" / f"part-{start:09d}-{end:09d}.parquet"


def write_part(path: Path, summary: Summary, meta: dict) -> None:
    """Write one shard's summary (``meta``: anything JSON, kept in the file's metadata)."""
    n_layers, n_heads = summary.shape
    k, n_pos = summary.top_k, summary.top_pos.shape[-2]
    cols = _long_columns(summary)
    cols["top_id"] = pa.array(list(summary.top_id.reshape(-1, k)), pa.list_(pa.int64()))
    cols["top_value"] = pa.array(list(summary.top_value.reshape(-1, k)), pa.list_(pa.float64()))
    cols["top_pos"] = pa.array(list(summary.top_pos.reshape(-1, k * n_pos * 2)), pa.list_(pa.int32()))
    info = {"count": summary.count, "tokens": summary.tokens, "truncated": summary.truncated,
            "skipped": summary.skipped, "layers": n_layers, "heads": n_heads, "top_k": k, "positions": n_pos, **meta}
    table = pa.table(cols).replace_schema_metadata({_META: json.dumps(info).encode()})
    write_atomic(path, lambda p: pq.write_table(table, p))


def read_part(path: Path) -> tuple[Summary, dict]:
    """A part's summary and its metadata (as written by :func:`write_part`)."""
    table = pq.read_table(path)
    info = json.loads(table.schema.metadata[_META])
    n_layers, n_heads, k, n_pos = info["layers"], info["heads"], info["top_k"], info["positions"]
    shape = (n_layers, n_heads, len(STAT_NAMES))

    def col(name: str) -> np.ndarray:
        return table.column(name).to_numpy()

    def lists(name: str, width: int, dtype: type) -> np.ndarray:
        return table.column(name).combine_chunks().flatten().to_numpy().astype(dtype).reshape(len(table), width)

    stat = col("stat").astype(str)
    hist = {name: np.stack(table.column("hist").to_numpy(zero_copy_only=False)[stat == name]).astype(np.int64)
            .reshape(n_layers, n_heads, -1) for name in STAT_NAMES}
    summary = Summary(
        count=info["count"], tokens=info["tokens"], truncated=info["truncated"], skipped=info["skipped"],
        sum=col("sum").reshape(shape), sumsq=col("sumsq").reshape(shape), min=col("min").reshape(shape),
        max=col("max").reshape(shape), hist=hist,
        top_value=lists("top_value", k, np.float64).reshape(*shape, k),
        top_id=lists("top_id", k, np.int64).reshape(*shape, k),
        top_pos=lists("top_pos", k * n_pos * 2, np.int32).reshape(*shape, k, n_pos, 2),
    )
    return summary, info


def write_results(out: Path, summary: Summary, text_of: Callable[[int], str], info: dict) -> dict:
    """Write ``heads.parquet``, ``top.parquet`` and ``corpus.json`` (``info`` plus the counts of ``summary``).

    Returns:
        the content of ``corpus.json``.
    """
    cols = _long_columns(summary)
    cols["count"] = pa.array(np.full(len(cols["stat"]), summary.count, dtype=np.int64))
    cols["mean"] = pa.array(summary.mean().ravel())
    cols["std"] = pa.array(summary.std().ravel())
    cols["hist_edges"] = pa.array([BINS[s].tolist() for s in cols["stat"].to_pylist()], pa.list_(pa.float64()))
    order = ["layer", "head", "stat", "count", "mean", "std", "min", "max", "sum", "sumsq", "hist", "hist_edges"]
    heads = pa.table({name: cols[name] for name in order})
    write_atomic(out / "heads.parquet", lambda p: pq.write_table(heads, p))
    top = _top_table(summary, text_of)
    write_atomic(out / "top.parquet", lambda p: pq.write_table(top, p))
    content = {
        "format": FORMAT, **info, "texts": summary.count, "tokens": summary.tokens,
        "truncated": summary.truncated, "skipped": len(summary.skipped), "skipped_ids": summary.skipped[:100],
        "layers": summary.shape[0], "heads": summary.shape[1], "stats": list(STAT_NAMES),
        "bins": {name: BINS[name].tolist() for name in STAT_NAMES},
    }
    write_json(out / "corpus.json", content)
    return content


def _long_columns(summary: Summary) -> dict[str, pa.Array]:
    """Columns of one row per (layer, head, stat), in that nesting order."""
    n_layers, n_heads = summary.shape
    layer, head, s = np.indices((n_layers, n_heads, len(STAT_NAMES))).reshape(3, -1)
    return {
        "layer": pa.array(layer.astype(np.int16)), "head": pa.array(head.astype(np.int16)),
        "stat": pa.array([STAT_NAMES[i] for i in s], pa.string()),
        "min": pa.array(summary.min.ravel()), "max": pa.array(summary.max.ravel()),
        "sum": pa.array(summary.sum.ravel()), "sumsq": pa.array(summary.sumsq.ravel()),
        "hist": _hist_column(summary),
    }


def _hist_column(summary: Summary) -> pa.Array:
    """The histograms as one list per (layer, head, stat) row, built from offsets (no Python loop over rows)."""
    n_layers, n_heads = summary.shape
    values = np.concatenate([summary.hist[name] for name in STAT_NAMES], -1).astype(np.int64)  # [layer, head, bins]
    sizes = np.tile([summary.hist[name].shape[-1] for name in STAT_NAMES], n_layers * n_heads)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.ravel()))


def _top_table(summary: Summary, text_of: Callable[[int], str]) -> pa.Table:
    """One row per filled top-k slot: layer, head, stat, rank, id, value, query, key (lists), text."""
    layer, head, s, rank = np.nonzero(summary.top_id >= 0)
    pos = summary.top_pos[layer, head, s, rank]  # [row, position, 2]
    ids = summary.top_id[layer, head, s, rank]
    texts = {int(i): text_of(int(i)) for i in np.unique(ids)}
    return pa.table({
        "layer": pa.array(layer.astype(np.int16)), "head": pa.array(head.astype(np.int16)),
        "stat": pa.array([STAT_NAMES[i] for i in s], pa.string()), "rank": pa.array(rank.astype(np.int16)),
        "id": pa.array(ids), "value": pa.array(summary.top_value[layer, head, s, rank]),
        "query": pa.array([p[p[:, 0] >= 0, 0].tolist() for p in pos], pa.list_(pa.int32())),
        "key": pa.array([p[p[:, 0] >= 0, 1].tolist() for p in pos], pa.list_(pa.int32())),
        "text": pa.array([texts[int(i)] for i in ids], pa.string()),
    })
