"""The Ray actor of the corpus pipeline: one loaded model per actor, one summary per batch.

Ray Data calls an instance with a block of planned batches (:mod:`attnviz.corpus.plan`), one row each, and gets
one row per batch back: its :class:`~attnviz.corpus.reduce.Summary` as flat arrays, with the shard and batch it
belongs to. A batch's summary depends only on its texts, so a retry after a lost worker gives the same bits.
"""
from __future__ import annotations

import json
import logging

import numpy as np

from attnviz.corpus.reduce import Summary, summarise

log = logging.getLogger(__name__)


class StatsWorker:
    """Callable class for ``Dataset.map_batches``: loads ``model`` once (``attnviz.load_model``)."""

    def __init__(self, model: str, top_k: int, n_positions: int) -> None:
        import attnviz
        from attnviz.corpus.batch import check_text_model

        self.model = attnviz.load_model(model)
        check_text_model(self.model)
        self.top_k, self.n_positions = top_k, n_positions
        log.info("corpus worker: %s loaded", self.model.name)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Summaries of the planned batches in ``batch`` (columns ``shard``, ``batch``, ``ids``, ``texts``).

        Returns:
            columns ``shard``, ``batch``, ``skipped`` (JSON list of ids) and the arrays of
            :meth:`Summary.to_arrays`, one row per planned batch.
        """
        from attnviz.corpus.batch import head_stats_batch

        rows = []
        for shard, index, ids, texts in zip(batch["shard"], batch["batch"], batch["ids"], batch["texts"],
                                            strict=True):
            stats = head_stats_batch(self.model, [str(t) for t in texts], self.n_positions)
            summary = summarise(np.asarray(ids, dtype=np.int64), stats, self.model.n_layers, self.model.n_heads,
                                self.top_k, self.n_positions)
            arrays = summary.to_arrays()
            arrays["skipped"] = np.array(json.dumps(summary.skipped))
            rows.append({"shard": np.int64(shard), "batch": np.int64(index), **arrays})
        return {name: np.stack([np.asarray(r[name]) for r in rows]) for name in rows[0]}


def summary_of_row(row: dict) -> Summary:
    """The :class:`Summary` of one output row of :class:`StatsWorker`."""
    arrays = {name: np.asarray(value) for name, value in row.items()}
    arrays["skipped"] = np.array(json.loads(str(row["skipped"])), dtype=np.int64)
    return Summary.from_arrays(arrays)
