"""The Ray actor of the corpus pipeline: :class:`StatsWorker`, one loaded model per actor, one summary per batch.

The command feeds a pool of these actors with planned batches (:mod:`attnviz.corpus.plan`) through plain actor calls
(:func:`attnviz.corpus.pipeline.result_rows`) and gets, per batch, its :class:`~attnviz.corpus.reduce.Summary` (the
reduction happens in the actor: only sums, extremes, histograms and the batch's top texts travel). A batch's summary
depends only on its texts, so a retry after a lost worker gives the same bits.
"""
from __future__ import annotations

import logging

import numpy as np

from attnviz.corpus.reduce import Summary

log = logging.getLogger(__name__)


class StatsWorker:
    """Loads ``model`` once (``attnviz.load_model``); :meth:`summarise` makes one batch's summary.

    A model that cannot be loaded (or is not a text model) does not fail the actor's creation (Ray would report it
    as a dead actor): its error is raised by the first :meth:`summarise`, as itself."""

    def __init__(self, model: str, top_k: int, n_positions: int) -> None:
        self.top_k, self.n_positions = top_k, n_positions
        self.model = None
        self.error: Exception | None = None
        try:
            import attnviz
            from attnviz.corpus.batch import check_text_model

            self.model = attnviz.load_model(model)
            check_text_model(self.model)
            log.info("corpus worker: %s loaded", self.model.name)
        except Exception as e:  # handed to the command with the first batch
            self.error = e

    def summarise(self, shard: int, index: int, ids: np.ndarray, texts: list[str]) -> dict:
        """The summary of one planned batch (texts ``texts`` with ids ``ids``).

        Returns:
            ``{"shard": shard, "batch": index, "summary": Summary}``.
        """
        from attnviz.corpus.batch import summarise_batch

        if self.error is not None:
            raise self.error
        summary = summarise_batch(self.model, np.asarray(ids, dtype=np.int64), [str(t) for t in texts], self.top_k,
                                  self.n_positions)
        return {"shard": int(shard), "batch": int(index), "summary": summary}


def summary_of_row(row: dict) -> Summary:
    """The :class:`Summary` of one result of :meth:`StatsWorker.summarise`."""
    return row["summary"]
