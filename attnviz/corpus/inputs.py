"""Reading a corpus: one text per line (``.txt``), a ``text`` field per line (``.jsonl``) or a ``text`` column
(``.parquet``).

A text's id is its place in the file, 0-based: the line number for ``.txt`` and ``.jsonl``, the row for
``.parquet``. Blank lines and missing (null or blank) texts are left out but keep their numbers, so an id always
points back into the file. The file is read on the driver: ids stay stable across reruns (resuming depends on it),
and the workers of a remote cluster need no access to it.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMATS = (".txt", ".jsonl", ".parquet")


@dataclass(frozen=True)
class Corpus:
    """Texts of an input file.

    Attributes:
        path: the file.
        sha256: hex SHA-256 of the file's bytes.
        ids: int64 ``[text]``: each text's place in the file (see the module docstring).
        texts: the texts, in file order.
        n_in_file: texts in the whole file (before ``limit``).
    """

    path: Path
    sha256: str
    ids: np.ndarray
    texts: list[str]
    n_in_file: int

    def __len__(self) -> int:
        return len(self.texts)

    def text(self, text_id: int) -> str:
        """The text whose id is ``text_id``."""
        i = int(np.searchsorted(self.ids, text_id))
        if i >= len(self.ids) or self.ids[i] != text_id:
            raise KeyError(text_id)
        return self.texts[i]


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            h.update(block)
    return h.hexdigest()


def read_corpus(path: str | Path, limit: int | None = None) -> Corpus:
    """Read the texts of ``path`` (the first ``limit`` of them, if given).

    Raises:
        ValueError: an unknown extension, a file that is not UTF-8 text, a ``.jsonl`` line that is not a JSON
            object with a string ``text``, a ``.parquet`` file without a string ``text`` column, or no text at all.
        OSError: the file cannot be read.
    """
    path = Path(path)
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be at least 1, got {limit}")
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path.name}: the input must be a {', '.join(FORMATS)} file")
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if suffix == ".parquet":
        numbered = _read_parquet(path)
    else:
        try:
            lines = path.read_text(encoding="utf-8-sig").split("\n")  # universal newlines: \r\n and \r too
        except UnicodeDecodeError as e:
            raise ValueError(f"{path.name} is not UTF-8 text (byte {e.start}): save it as UTF-8") from None
        numbered = list(enumerate(lines)) if suffix == ".txt" else _jsonl_texts(path.name, lines)
    numbered = [(i, t) for i, t in numbered if t is not None and t.strip()]
    if not numbered:
        raise ValueError(f"{path.name} holds no text")
    n_in_file = len(numbered)
    numbered = numbered[:limit]
    return Corpus(path=path, sha256=file_sha256(path), ids=np.array([i for i, _ in numbered], dtype=np.int64),
                  texts=[t for _, t in numbered], n_in_file=n_in_file)


def _jsonl_texts(name: str, lines: list[str]) -> list[tuple[int, str | None]]:
    out: list[tuple[int, str | None]] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{name}, line {i + 1}: not JSON ({e.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("text", ""), (str, type(None))):
            raise ValueError(f"{name}, line {i + 1}: expected an object with a string field \"text\"")
        if "text" not in row:
            raise ValueError(f"{name}, line {i + 1}: no field \"text\"")
        out.append((i, row["text"]))
    return out


def _read_parquet(path: Path) -> list[tuple[int, str | None]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise ValueError(f"{path.name} is not a Parquet file: {e}") from None
    if "text" not in schema.names:
        raise ValueError(f"{path.name} has no column \"text\" (its columns: {', '.join(schema.names)})")
    if not (pa.types.is_string(schema.field("text").type) or pa.types.is_large_string(schema.field("text").type)):
        raise ValueError(f"{path.name}: column \"text\" holds {schema.field('text').type}, not strings")
    return list(enumerate(pq.read_table(path, columns=["text"]).column("text").to_pylist()))
