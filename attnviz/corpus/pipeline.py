"""A corpus run: read, plan, compute the missing shards on Ray Data, merge the parts, write the results.

Without an address a new local Ray is started (``ray.init(address="local", num_cpus=...)``: never a cluster that
happens to run on the machine) and shut down at the end; with one (``auto``, ``ray://host:10001``) the same code runs
on that cluster. If Ray is already initialised
in this process (a notebook, the tests), that Ray is used and left running.

The Ray Data pipeline is driven by an actor on the cluster (:class:`~attnviz.corpus.worker.PipelineDriver`), which
hands the summaries to this process through plain actor calls: a Ray Client (``ray://host:10001``) cannot drive Ray
Data itself, and so every address runs the same code.

Fault tolerance: the actors are created with ``max_restarts``/``max_task_retries``, so a killed worker process is
restarted and its batches run again; each batch's summary depends only on its texts and the driver merges batches
and parts in a fixed order, so the totals are the same bits as an undisturbed run.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from attnviz.corpus.inputs import Corpus, read_corpus
from attnviz.corpus.plan import Shard, plan
from attnviz.corpus.reduce import BINS, Summary, merge
from attnviz.corpus.store import FORMAT, open_run, part_path, read_part, write_part, write_results

log = logging.getLogger(__name__)

MAX_RESTARTS = 8
"""Times Ray restarts a dead actor of the pool (then the run fails)."""
MAX_TASK_RETRIES = 8
"""Times a batch is retried on a restarted actor after its worker died."""
WORKER_ENV = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error"}
"""Environment of the workers: no model-loading bars or advisories in the driver's terminal."""


@dataclass(frozen=True)
class CorpusJob:
    """What to compute.

    Attributes:
        model: a model name (``attnviz.list_models()``) or a local model directory; the workers load it.
        input: a ``.txt``, ``.jsonl`` or ``.parquet`` file (:mod:`attnviz.corpus.inputs`).
        out: the output folder (:mod:`attnviz.corpus.store`); a rerun into it skips the shards already written.
        address: a Ray cluster (``auto``, ``ray://host:port``); None starts a local Ray.
        limit: only the first ``limit`` texts.
        batch: texts per batch (similar lengths; the forward groups them by token count).
        shard: texts per shard (the unit written as one part and skipped on a rerun).
        top_k: texts kept per head and statistic.
        positions: (query, key) cells kept per top text.
        workers: actors in the pool; None: one per free CPU of the cluster (at most that many in any case).
    """

    model: str
    input: Path
    out: Path
    address: str | None = None
    limit: int | None = None
    batch: int = 64
    shard: int = 1024
    top_k: int = 10
    positions: int = 3
    workers: int | None = None

    def identity(self, corpus: Corpus) -> dict:
        """What a rerun must share with the run in ``out`` to reuse its parts."""
        model = self.model
        if Path(model).expanduser().is_dir():
            model = str(Path(model).expanduser().resolve())
        return {"format": FORMAT, "model": model, "input_sha256": corpus.sha256, "shard": self.shard,
                "batch": self.batch, "top_k": self.top_k, "positions": self.positions,
                "bins": {name: edges.tolist() for name, edges in BINS.items()}}


Progress = Callable[[int, int], None]
"""Called with (texts done, texts in all) after each batch (and once at the start)."""


def run_corpus(job: CorpusJob, progress: Progress | None = None) -> dict:
    """Compute what is missing in ``job.out`` and write the results.

    Returns:
        the content of ``corpus.json``.
    Raises:
        ValueError: bad input, options or output folder (a message to act on).
    """
    t0 = time.perf_counter()
    for name in ("batch", "shard", "top_k", "positions"):
        if getattr(job, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(job, name)}")
    if job.workers is not None and job.workers < 1:
        raise ValueError(f"workers must be at least 1, got {job.workers}")
    _check_model(job.model)
    corpus = read_corpus(job.input, job.limit)
    out = Path(job.out)
    open_run(out, job.identity(corpus))
    shards = plan(corpus, job.shard, job.batch)
    pending = [s for s in shards if not part_path(out, s.start, s.end).is_file()]
    resumed = len(corpus) - sum(len(s) for s in pending)
    if resumed:
        log.info("resuming: %d of %d texts already done in %s", resumed, len(corpus), out)
    progress = progress or (lambda done, total: None)
    progress(resumed, len(corpus))
    compute_s = 0.0
    workers = None
    if pending:
        with ray_session(job.address) as cpus:
            free = _free_cpus()
            if free < 1:
                raise ValueError(f"The Ray cluster has no free CPU: all {cpus} are held by other actors (the app's "
                                 "model pools, another run). Free some, or add a node, and run the command again.")
            workers = min(job.workers or free, free)  # each actor takes a CPU: more would wait for ever
            if job.workers and job.workers > free:
                log.warning("%d workers asked, the cluster has %d free CPUs (of %d): running %d", job.workers, free,
                            cpus, free)
            t1 = time.perf_counter()
            _compute(job, corpus, pending, workers, lambda n: progress(n + resumed, len(corpus)))
            compute_s = time.perf_counter() - t1
    summary = merge(read_part(part_path(out, s.start, s.end))[0] for s in shards)
    computed = len(corpus) - resumed
    info = {
        "model": job.model, "input": {"path": str(job.input), "sha256": corpus.sha256, "texts": corpus.n_in_file},
        "limit": job.limit, "batch": job.batch, "shard": job.shard, "top_k": job.top_k, "positions": job.positions,
        "address": job.address, "workers": workers, "computed": computed, "resumed": resumed,
        "seconds": round(time.perf_counter() - t0, 3), "compute_seconds": round(compute_s, 3),
        "texts_per_second": round(computed / compute_s, 2) if compute_s else None,
    }
    written = write_results(out, summary, corpus.text, info)
    log.info("%d texts (%d computed now) in %.1f s -> %s", summary.count, computed, info["seconds"], out)
    return written


def _check_model(name: str) -> None:
    """``ValueError`` for an unknown model name or one that is not a text model, before any worker starts (a local
    directory is checked by the workers that load it)."""
    from attnviz.models import model_info

    if Path(name).expanduser().is_dir():
        return
    entry = model_info(name)
    if entry.kind != "text":
        raise ValueError(f"Corpus statistics need a text model (such as minilm); {name} is a {entry.kind} model.")


def _free_cpus() -> int:
    """CPUs of the connected cluster that no actor or task holds now."""
    import ray

    return int(ray.available_resources().get("CPU", 0))


@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[int]:
    """A connected Ray for the block; yields the cluster's CPU count. Starts (and stops) a local Ray when Ray is
    not initialised and no ``address`` is given."""
    import ray

    started = not ray.is_initialized()
    if started:
        if address:
            from attnviz.remote import init_cluster

            init_cluster(address)
        else:
            ray.init(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False,
                     logging_level=logging.WARNING)
    try:
        yield max(1, int(ray.cluster_resources().get("CPU", 1)))
    finally:
        if started:
            ray.shutdown()


@contextlib.contextmanager
def _quiet_data_context() -> Iterator[None]:
    """Ray Data without its own progress bars and start-up banner (the caller shows texts/s), restored after."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    saved = {k: getattr(ctx, k) for k in ("enable_progress_bars", "print_on_execution_start", "enable_auto_log_stats")}
    ctx.enable_progress_bars = ctx.print_on_execution_start = ctx.enable_auto_log_stats = False
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(ctx, k, v)


def _compute(job: CorpusJob, corpus: Corpus, pending: list[Shard], workers: int,
             progress: Callable[[int], None]) -> None:
    """Run the batches of ``pending`` shards on an actor pool of ``workers`` and write each shard's part as soon as
    all its batches are in (merged in batch order)."""
    from attnviz.corpus.worker import summary_of_row

    rows = [{"shard": s.start, "batch": j, "ids": corpus.ids[b], "texts": [corpus.texts[i] for i in b]}
            for s in pending for j, b in enumerate(s.batches)]
    by_start = {s.start: s for s in pending}
    got: dict[int, dict[int, Summary]] = {}
    done = 0
    t_start = time.perf_counter()
    for row in _rows_on_cluster(rows, job, workers):
        shard = by_start[int(row["shard"])]
        batches = got.setdefault(shard.start, {})
        index = int(row["batch"])
        if index in batches:
            continue
        batches[index] = summary = summary_of_row(row)
        done += summary.count + len(summary.skipped)
        progress(done)
        if len(batches) == len(shard.batches):
            part = merge(batches[j] for j in range(len(shard.batches)))
            write_part(part_path(job.out, shard.start, shard.end), part,
                       {"start": shard.start, "end": shard.end, "batch": job.batch,
                        "written_after_s": round(time.perf_counter() - t_start, 3)})
            del got[shard.start]
    missing = [s.start for s in pending if not part_path(job.out, s.start, s.end).is_file()]
    if missing:
        raise RuntimeError(f"the run ended without the shards starting at {missing}")


def _rows_on_cluster(rows: list[dict], job: CorpusJob, workers: int) -> Iterator[dict]:
    """The summary rows of ``rows``' batches, as they come, from :func:`result_rows` run by a
    :class:`~attnviz.corpus.worker.PipelineDriver` actor on the cluster (no CPU of its own). A Ray Client
    (``ray://``) cannot drive Ray Data itself, so the run is driven there whatever the address: the same code on a
    local Ray and on a cluster. The actor is killed at the end (its pool with it)."""
    import ray

    from attnviz.corpus.worker import PipelineDriver

    driver = ray.remote(PipelineDriver).options(num_cpus=0, runtime_env={"env_vars": WORKER_ENV}).remote()
    try:
        ray.get(driver.start.remote(rows, job, workers))
        finished = False
        while not finished:
            try:
                batch, finished = ray.get(driver.take.remote())
            except ray.exceptions.RayTaskError as e:  # the pipeline's own error, as itself
                raise (e.cause if isinstance(e.cause, Exception) else e) from None
            yield from batch
    finally:
        ray.kill(driver)


def result_rows(rows: list[dict], job: CorpusJob, workers: int) -> Iterator[dict]:
    """The Ray Data pipeline in this process (a Ray driver or worker): ``rows`` (one per batch) through a pool of
    ``workers`` :class:`~attnviz.corpus.worker.StatsWorker` actors, one summary row per batch as each is ready."""
    import ray

    from attnviz.corpus.worker import StatsWorker

    with _quiet_data_context():
        ds = ray.data.from_items(rows, override_num_blocks=len(rows))
        with warnings.catch_warnings():  # Ray 2.60 takes max_restarts/max_task_retries only as ray_remote_args
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*", category=DeprecationWarning)
            results = ds.map_batches(
                StatsWorker, batch_size=1, batch_format="numpy", num_cpus=1,
                fn_constructor_kwargs={"model": job.model, "top_k": job.top_k, "n_positions": job.positions},
                compute=ray.data.ActorPoolStrategy(size=workers), runtime_env={"env_vars": WORKER_ENV},
                max_restarts=MAX_RESTARTS, max_task_retries=MAX_TASK_RETRIES)
        yield from results.iter_rows()
