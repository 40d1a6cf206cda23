"""Cutting a corpus into shards and batches.

A shard is a run of consecutive texts (by place in the corpus): the unit that is written as one part and skipped
when a rerun finds its part. Inside a shard, texts are sorted by length (characters, then place) and cut into
batches, so a batch holds texts of similar length (the worker then groups them by token count,
:mod:`attnviz.corpus.batch`). Everything here depends only on the corpus and the two sizes, so a rerun plans the
same batches, and each batch's summary is the same bits.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnviz.corpus.inputs import Corpus


@dataclass(frozen=True)
class Shard:
    """Texts ``start`` to ``end`` (exclusive, places in the corpus) and their batches, each an int ``[text]`` array
    of places, in processing order."""

    start: int
    end: int
    batches: tuple[np.ndarray, ...]

    def __len__(self) -> int:
        return self.end - self.start


def plan(corpus: Corpus, shard_size: int, batch_size: int) -> list[Shard]:
    """Shards of ``shard_size`` texts (the last may be shorter), each in batches of up to ``batch_size`` texts of
    similar length.

    Raises:
        ValueError: a size below 1.
    """
    if shard_size < 1 or batch_size < 1:
        raise ValueError(f"shard and batch sizes must be at least 1, got {shard_size} and {batch_size}")
    lengths = np.fromiter((len(t) for t in corpus.texts), dtype=np.int64, count=len(corpus))
    shards = []
    for start in range(0, len(corpus), shard_size):
        end = min(start + shard_size, len(corpus))
        places = np.arange(start, end)
        places = places[np.lexsort((places, lengths[start:end]))]
        shards.append(Shard(start, end, tuple(places[i:i + batch_size] for i in range(0, len(places), batch_size))))
    return shards
