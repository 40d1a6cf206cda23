"""A small corpus for the corpus tests, written in each input format."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

TEXTS = [
    "The cat sat on the mat.",
    "Attention is all you need, or so the title says.",
    "Hi!",
    "A much longer sentence, with commas, semicolons; and several clauses that go on for quite a while.",
    "Where did the dog go?",
    "She said: \"no, not today\" and left.",
    "\x00\x01",  # no token the model can read: counted as skipped
    "Transformers read every token at once.",
    "One, two, three, four, five.",
    "The quick brown fox jumps over the lazy dog.",
    "Is this the real life? Is this just fantasy?",
    "Rain again.",
    "Numbers like 3.14 and 2,718 are tokens too.",
    "Heads that look at the previous token are common in early layers.",
    "Why?",
    "The river flows past the old mill, and the mill wheel turns.",
    "Colourless green ideas sleep furiously.",
    "To be, or not to be: that is the question.",
    "A short one.",
    "Punctuation!!! Lots of it... really?!",
    "The museum opens at nine and closes at five.",
    "Several heads attend mostly to the [SEP] token.",
    "I think, therefore I am.",
    "Students learn attention by looking at it.",
    "What does BERT look at?",
    "Every head has its own pattern.",
    "The end.",
    "Trees, rivers and mountains.",
    "A model reads; a person interprets.",
    "Tokens, tokens everywhere.",
    "Cold coffee is still coffee.",
    "The train left at dawn and arrived at dusk.",
    "Quiet.",
    "She sells sea shells by the sea shore.",
    "Long sentences are cut into many word pieces by the tokenizer, which splits rare words.",
    "Good night, and good luck.",
]
"""36 texts: one the model refuses, the rest of 2 to 25 words."""


def write_txt(path: Path, texts: list[str] = TEXTS) -> Path:
    """One text per line, with a blank line after the third (left out, but it keeps its line number)."""
    lines = texts[:3] + [""] + texts[3:]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_jsonl(path: Path, texts: list[str] = TEXTS) -> Path:
    """Same ids as :func:`write_txt`: a blank line where the txt file has one."""
    rows = [json.dumps({"text": t, "source": "test"}) for t in texts]
    path.write_text("\n".join(rows[:3] + [""] + rows[3:]) + "\n", encoding="utf-8")
    return path


def write_parquet(path: Path, texts: list[str] = TEXTS) -> Path:
    """Same ids as :func:`write_txt`: a null row where the txt file has a blank line."""
    pq.write_table(pa.table({"text": texts[:3] + [None] + texts[3:]}), path)
    return path


def write_result(out: Path, model, texts: list[str] = TEXTS, top_k: int = 3, n_positions: int = 2) -> Path:
    """A corpus run's results folder made in this process (no Ray): ``texts`` through ``model`` in one batch, the
    same statistics, summary and files as ``python -m attnviz corpus`` (ids are places in ``texts``)."""
    import numpy as np

    from attnviz.corpus.batch import head_stats_batch
    from attnviz.corpus.reduce import summarise
    from attnviz.corpus.store import write_results

    out.mkdir(parents=True, exist_ok=True)
    stats = head_stats_batch(model, texts, n_positions)
    summary = summarise(np.arange(len(texts)), stats, model.n_layers, model.n_heads, top_k, n_positions)
    write_results(out, summary, lambda i: texts[i], {"model": model.name, "input": {"path": "texts.txt"},
                                                      "seconds": 1.0, "texts_per_second": float(len(texts))})
    return out
