"""Writing results as files: one table of formats (:data:`FORMATS`), and what goes in them (NumPy weights, token
JSON, CSV of matrices, PNG images).

Every download on the pages (:func:`attnviz.web.widgets.download_strip`) and every file the command line writes
(:func:`export_result`) goes through :data:`FORMATS`: a format is its label, MIME type, suffix and writer. To add one,
write its writer and add an entry; a view offers it with one more ``Download(..., "<name>", ...)``.
"""
from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from attnviz.render import grid_image, labelled_heatmap, png_bytes
from attnviz.render.colors import DEFAULT_COLORSCALE
from attnviz.result import WEIGHTS_MAX_BYTES, AttentionResult

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


def png_file(image: Image.Image | bytes) -> bytes:
    """PNG bytes of a picture (bytes that already are a PNG pass through)."""
    return image if isinstance(image, bytes) else png_bytes(image)


def utf8(text: str) -> bytes:
    """A text file's bytes (CSV, JSON, SVG)."""
    return text.encode("utf-8")


@dataclass(frozen=True)
class Format:
    """One export format.

    Attributes:
        label: its name for people, in button labels: ``"Focused head (PNG)"``.
        mime: the MIME type a download is sent with.
        suffix: the file name's ending, with its dot.
        write: the payload (what the format holds: a picture, an array, a text) -> the file's bytes.
    """

    label: str
    mime: str
    suffix: str
    write: Callable[[Any], bytes]


FORMATS: dict[str, Format] = {
    "png": Format("PNG", "image/png", ".png", png_file),              # a PIL image (or PNG bytes)
    "svg": Format("SVG", "image/svg+xml", ".svg", utf8),              # SVG text
    "csv": Format("CSV", "text/csv", ".csv", utf8),                   # CSV text (matrix_csv, measures_csv...)
    "json": Format("JSON", "application/json", ".json", utf8),        # JSON text
    "npy": Format("NPY", "application/octet-stream", ".npy", weights_npy),  # a numpy array
}
"""Export formats by name: the pages' downloads and the command line's files."""


def file_name(stem: str, fmt: str) -> str:
    """``stem`` with the suffix of format ``fmt`` (a key of :data:`FORMATS`)."""
    return stem + FORMATS[fmt].suffix


def tokens_json(result: AttentionResult) -> str:
    """The result's labels and metadata as JSON text."""
    doc = {
        "model": result.model, "kind": result.kind, "tokens": result.tokens, "key_tokens": result.key_tokens,
        "special": [bool(s) for s in result.special], "truncated": result.truncated,
        "segments": None if result.segments is None else [int(s) for s in result.segments],
        "causal": result.causal, "grid": list(result.grid) if result.grid else None,
        "shape": {"layer": result.n_layers, "head": result.n_heads, "query": result.n_tokens,
                  "key": result.n_keys},
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


def records_csv(records: list[dict[str, object]]) -> str:
    """CSV of a list of records (one row each, the first record's keys as the header); floats as ``%.6g``, text
    cells spreadsheet-safe."""
    buf = io.StringIO()
    if not records:
        return ""
    w = csv.writer(buf)
    names = list(records[0])
    w.writerow(names)
    for r in records:
        w.writerow([f"{v:.6g}" if isinstance(v, float) else safe_cell(v) if isinstance(v, str) else v
                    for v in (r[k] for k in names)])
    return buf.getvalue()


def head_rows_csv(rows: np.ndarray, key_tokens: list[str]) -> str:
    """CSV of one query's attention row in every head, ``rows[layer, head, key]``: columns ``layer, head`` and one
    per key token, one row per head."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["layer", "head"] + [safe_cell(f"{i}:{t}") for i, t in enumerate(key_tokens)])
    for layer, heads in enumerate(rows):
        for head, row in enumerate(heads):
            w.writerow([layer, head] + [f"{v:.6g}" for v in row])
    return buf.getvalue()


def head_csv(result: AttentionResult, layer: int, head: int) -> str:
    """CSV of one head's ``[query, key]`` weights."""
    return matrix_csv(result.head(layer, head), result.tokens, result.keys)


def head_title(result: AttentionResult, layer: int, head: int) -> str:
    return f"{result.model} · layer {layer} · head {head}"


GRID_CELL = 96
"""Side of each head's thumbnail in ``grid.png``."""
HEAD_PNG_MAX_TOKENS = 2048
"""Longest input whose every head :func:`export_result` writes as a PNG (each 1,024 px at most): past it, 270
heads of SmolLM2 take minutes to compute and draw; the grid and the heads asked for as CSV are still written."""


def export_result(result: AttentionResult, out: Path, colorscale: str = DEFAULT_COLORSCALE,
                  csv_heads: tuple[tuple[int, int], ...] = (),
                  skipped: Callable[[str], None] | None = None) -> list[Path]:
    """Write ``weights.npy``, ``tokens.json``, ``grid.png``, ``layer{L}_head{H}.png`` for every head and
    ``layer{L}_head{H}.csv`` for each head in ``csv_heads``; the same files for each of the result's parts (e.g.
    an encoder-decoder's ``cross`` and ``decoder`` attention) in a folder named after it (``out/cross/``...).

    A long input writes what fits: ``weights.npy`` only under the bound of ``AttentionResult.weights``
    (:data:`attnviz.result.WEIGHTS_MAX_BYTES`), the per-head PNGs only up to :data:`HEAD_PNG_MAX_TOKENS` tokens;
    ``skipped`` (a logged warning by default) is told, in a sentence, each file left out and why.

    Returns:
        The paths written.
    Raises:
        ValueError: a head in ``csv_heads`` that the model lacks (checked before anything is written).
        OSError: ``out`` cannot be created or written.
    """
    for layer, head in csv_heads:
        result.head(layer, head)
    say = skipped or log.warning
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def put(stem: str, fmt: str, payload: object) -> None:
        p = out / file_name(stem, fmt)
        p.write_bytes(FORMATS[fmt].write(payload))
        written.append(p)

    where = f" ({out.name})" if result.kind == "seq2seq" else ""
    if result.weights_nbytes <= WEIGHTS_MAX_BYTES:
        put("weights", "npy", result.weights)
    else:
        say(f"skipped weights.npy{where}: all {result.n_layers * result.n_heads} heads of {result.n_tokens} tokens "
            f"would take {result.weights_nbytes / 2**30:.1f} GiB (over {WEIGHTS_MAX_BYTES / 2**30:.0f} GiB); "
            "write chosen heads with --csv LAYER,HEAD, or read them in Python with result.head(layer, head)")
    put("tokens", "json", tokens_json(result))
    put("grid", "png", grid_image(result.overview(GRID_CELL), cell=GRID_CELL, colorscale=colorscale))
    if result.n_tokens <= HEAD_PNG_MAX_TOKENS:
        for layer in range(result.n_layers):
            for head in range(result.n_heads):
                img = labelled_heatmap(result.head(layer, head), result.tokens, result.keys,
                                       head_title(result, layer, head), colorscale)
                put(f"layer{layer}_head{head}", "png", img)
    else:
        say(f"skipped the {result.n_layers * result.n_heads} per-head PNGs{where}: {result.n_tokens} tokens is over "
            f"{HEAD_PNG_MAX_TOKENS}; grid.png shows every head (block maxima), and --csv LAYER,HEAD writes a head")
    for layer, head in csv_heads:
        put(f"layer{layer}_head{head}", "csv", head_csv(result, layer, head))
    log.info("wrote %d files to %s", len(written), out)
    for name, part in result.parts.items():
        written += export_result(part, out / name, colorscale, skipped=skipped)
    return written
