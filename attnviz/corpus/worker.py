"""The Ray actors of the corpus pipeline: :class:`StatsWorker` (one loaded model per actor, one summary per batch)
and :class:`PipelineDriver` (runs the Ray Data pipeline inside the cluster and hands its rows to the command).

Ray Data calls a :class:`StatsWorker` with a block of planned batches (:mod:`attnviz.corpus.plan`), one row each,
and gets one row per batch back: its :class:`~attnviz.corpus.reduce.Summary` as flat arrays, with the shard and batch
it belongs to. A batch's summary depends only on its texts, so a retry after a lost worker gives the same bits.
"""
from __future__ import annotations

import json
import logging
import threading

import numpy as np

from attnviz.corpus.reduce import Summary

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
        from attnviz.corpus.batch import summarise_batch

        rows = []
        for shard, index, ids, texts in zip(batch["shard"], batch["batch"], batch["ids"], batch["texts"],
                                            strict=True):
            summary = summarise_batch(self.model, np.asarray(ids, dtype=np.int64), [str(t) for t in texts],
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


class PipelineDriver:
    """An actor that runs :func:`attnviz.corpus.pipeline.result_rows` in a thread of its own and keeps the rows
    until :meth:`take` hands them over: the command reads the results through plain actor calls, which work over a
    Ray Client (``ray://``) too, where Ray Data cannot be driven."""

    def __init__(self) -> None:
        self._rows: list[dict] = []
        self._finished = False
        self._error: BaseException | None = None
        self._ready = threading.Condition()

    def start(self, rows: list[dict], job: object, workers: int) -> None:
        """Start the pipeline on ``rows`` (returns at once)."""
        threading.Thread(target=self._run, args=(rows, job, workers), name="corpus-pipeline", daemon=True).start()

    def _run(self, rows: list[dict], job: object, workers: int) -> None:
        from attnviz.corpus.pipeline import result_rows

        logging.getLogger("ray.data").setLevel(logging.WARNING)  # its notices would reach the command's terminal
        try:
            for row in result_rows(rows, job, workers):
                with self._ready:
                    self._rows.append(row)
                    self._ready.notify_all()
        except BaseException as e:  # handed to the command by take()
            log.exception("corpus pipeline failed")
            self._error = e
        finally:
            with self._ready:
                self._finished = True
                self._ready.notify_all()

    def take(self, wait_s: float = 1.0) -> tuple[list[dict], bool]:
        """The rows that came since the last call (waiting up to ``wait_s`` for one), and whether that was all.

        Raises:
            the pipeline's error, once its rows are handed over.
        """
        with self._ready:
            if not self._rows and not self._finished:
                self._ready.wait(wait_s)
            rows, self._rows = self._rows, []
            finished = self._finished
        if finished and not rows and self._error is not None:
            raise self._error
        return rows, finished and self._error is None  # an error comes at the next call, after these rows
