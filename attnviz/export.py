"""Writing results as files: NumPy weights, token JSON, per-head CSV and PNG images."""
from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

import numpy as np

from attnviz.render import grid_image, labelled_heatmap, png_bytes
from attnviz.render.colors import DEFAULT_COLORSCALE
from attnviz.result import AttentionResult

log = logging.getLogger(__name__)

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str) -> str:
    """A token as a spreadsheet-safe CSV cell: a leading ``= + - @`` is quoted so it is never a formula."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def weights_npy(weights: np.ndarray) -> bytes:
    """``.npy`` bytes of an array (written without pickle)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(weights), allow_pickle=False)
    return buf.getvalue()


def tokens_json(result: AttentionResult) -> str:
    """The result's labels and metadata as JSON text."""
    doc = {
        "model": result.model, "kind": result.kind, "tokens": result.tokens, "key_tokens": result.key_tokens,
        "special": [bool(s) for s in result.special], "truncated": result.truncated,
        "segments": None if result.segments is None else [int(s) for s in result.segments],
        "causal": result.causal, "grid": list(result.grid) if result.grid else None,
        "shape": {"layer": result.n_layers, "head": result.n_heads, "query": result.n_tokens,
                  "key": int(result.weights.shape[3])},
    }
    return json.dumps(doc, ensure_ascii=False, indent=1)


def matrix_csv(matrix: np.ndarray, row_tokens: list[str], col_tokens: list[str]) -> str:
    """CSV of a ``[query, key]`` matrix: header of key tokens, one row per query token."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["query \\ key"] + [safe_cell(f"{i}:{t}") for i, t in enumerate(col_tokens)])
    for i, (tok, row) in enumerate(zip(row_tokens, matrix, strict=True)):
        w.writerow([safe_cell(f"{i}:{tok}")] + [f"{v:.6g}" for v in row])
    return buf.getvalue()


def measures_csv(rows: dict[str, np.ndarray | None], tokens: list[str]) -> str:
    """CSV of one output token's attention by several measures: columns ``key, token`` and one per measure.

    Args:
        rows: measure name → ``[key]`` values (None: not computed, left out).
        tokens: ``[key]`` labels.
    """
    buf = io.StringIO()
    w = csv.writer(buf)
    names = [name for name, values in rows.items() if values is not None]
    w.writerow(["key", "token", *names])
    for k, t in enumerate(tokens):
        w.writerow([k, safe_cell(t), *(f"{rows[name][k]:.6g}" for name in names)])
    return buf.getvalue()


def head_csv(result: AttentionResult, layer: int, head: int) -> str:
    """CSV of one head's ``[query, key]`` weights."""
    return matrix_csv(result.head(layer, head), result.tokens, result.keys)


def head_title(result: AttentionResult, layer: int, head: int) -> str:
    return f"{result.model} · layer {layer} · head {head}"


def export_result(result: AttentionResult, out: Path, colorscale: str = DEFAULT_COLORSCALE,
                  csv_heads: tuple[tuple[int, int], ...] = ()) -> list[Path]:
    """Write ``weights.npy``, ``tokens.json``, ``grid.png``, ``layer{L}_head{H}.png`` for every head and
    ``layer{L}_head{H}.csv`` for each head in ``csv_heads``; the same files for each of the result's parts (e.g.
    an encoder-decoder's ``cross`` and ``decoder`` attention) in a folder named after it (``out/cross/``...).

    Returns:
        The paths written.
    Raises:
        ValueError: a head in ``csv_heads`` that the model lacks (checked before anything is written).
        OSError: ``out`` cannot be created or written.
    """
    for layer, head in csv_heads:
        result.head(layer, head)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def put(name: str, data: bytes | str) -> None:
        p = out / name
        p.write_bytes(data) if isinstance(data, bytes) else p.write_text(data, encoding="utf-8")
        written.append(p)

    put("weights.npy", weights_npy(result.weights))
    put("tokens.json", tokens_json(result))
    put("grid.png", png_bytes(grid_image(result.weights, colorscale=colorscale)))
    for layer in range(result.n_layers):
        for head in range(result.n_heads):
            img = labelled_heatmap(result.head(layer, head), result.tokens, result.keys,
                                   head_title(result, layer, head), colorscale)
            put(f"layer{layer}_head{head}.png", png_bytes(img))
    for layer, head in csv_heads:
        put(f"layer{layer}_head{head}.csv", head_csv(result, layer, head))
    log.info("wrote %d files to %s", len(written), out)
    for name, part in result.parts.items():
        written += export_result(part, out / name, colorscale)
    return written
