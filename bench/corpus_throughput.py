"""Throughput of corpus statistics (``python -m attnviz corpus``) on this machine. Prints figures; asserts nothing.

1. ``--compare`` texts (default 2,000): the pipeline on a local Ray with ``--workers`` actors (default 2) beside the
   same batch loop in one process (the same plan, batched forward and statistics, summaries, parts and
   results; torch's default threads). Target: Ray's throughput >= 0.8x the loop's. Both are reported end to end
   (Ray: start-up, actors loading the model; loop: loading the model) and in steady state (texts after the first
   result per second after it).
2. ``--large`` texts (default 100,000) of the size of a sentence through the CLI, with its progress bar on stderr.
   Target: <= 15 min on 2 cores. Runs only when the 1-minute load average is below ``--max-load`` (default 1.5;
   the machine is shared), or with ``--force``; ``--large 0`` skips it.

3. ``--cpu`` texts (default 0: skipped): the CPU time per text of an actor's work (:meth:`StatsWorker.summarise` on
   the planned batches, in this process, on one torch thread as an actor computes), which wall time on a shared
   machine cannot show.

The sentences are generated from a fixed seed over a small grammar (no download): 4 to 30 words, punctuation
included.

Usage::

    .venv/bin/python bench/corpus_throughput.py                      # 2,000-text comparison, then 100k if quiet
    .venv/bin/python bench/corpus_throughput.py --compare 300 --large 2000 --force   # smoke run
    .venv/bin/python bench/corpus_throughput.py --cpu 600 --compare 0 --large 0     # CPU per text of the work
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DET = ["the", "a", "every", "one", "this", "that", "no", "some"]
ADJ = ["old", "quiet", "bright", "small", "heavy", "green", "strange", "careful", "distant", "warm", "broken", "new"]
NOUN = ["river", "teacher", "model", "station", "garden", "engine", "letter", "city", "student", "window", "storm",
        "bridge", "library", "question", "market", "song", "machine", "forest", "painter", "token"]
VERB = ["crosses", "watches", "builds", "reads", "follows", "remembers", "breaks", "opens", "answers", "finds",
        "carries", "ignores"]
ADV = ["slowly", "again", "quietly", "at once", "every morning", "without a word", "after the rain", "twice"]
PREP = ["near", "behind", "under", "beyond", "inside", "across", "beside"]
NAMES = ["Ada", "Turing", "Marie", "Noor", "Kenji", "Lena", "Oscar"]


def _np(r: random.Random) -> str:
    words = [r.choice(DET)] + [r.choice(ADJ) for _ in range(r.randint(0, 2))] + [r.choice(NOUN)]
    if r.random() < 0.3:
        words += [r.choice(PREP), r.choice(DET), r.choice(NOUN)]
    return " ".join(words)


def sentence(r: random.Random) -> str:
    """One sentence of about 4 to 30 words."""
    subject = r.choice(NAMES) if r.random() < 0.2 else _np(r)
    clause = f"{subject} {r.choice(VERB)} {_np(r)}"
    if r.random() < 0.5:
        clause += f" {r.choice(ADV)}"
    if r.random() < 0.35:
        clause += f", and {_np(r)} {r.choice(VERB)} {_np(r)}"
    if r.random() < 0.15:
        clause = f'"{clause[0].upper()}{clause[1:]}," said {r.choice(NAMES)}'
        return clause + "."
    return clause[0].upper() + clause[1:] + r.choice([".", ".", ".", "!", "?", ";"])


def write_sentences(path: Path, n: int, seed: int = 0) -> Path:
    r = random.Random(seed)
    path.write_text("\n".join(sentence(r) for _ in range(n)) + "\n", encoding="utf-8")
    return path


def in_process(path: Path, out: Path, batch: int, shard: int, threads: int | None = None) -> dict:
    """The pipeline's batch loop in this process: plan, forward + statistics per batch, parts, results; on
    ``threads`` torch threads (None: torch's default, one per core)."""
    import torch

    import attnviz

    if threads:
        torch.set_num_threads(threads)
    from attnviz.corpus.batch import summarise_batch
    from attnviz.corpus.inputs import read_corpus
    from attnviz.corpus.plan import plan
    from attnviz.corpus.reduce import merge
    from attnviz.corpus.store import part_path, read_part, write_part, write_results

    t0 = time.perf_counter()
    model = attnviz.load_model("minilm")
    corpus = read_corpus(path)
    (out / "parts").mkdir(parents=True)
    shards = plan(corpus, shard, batch)
    t1 = time.perf_counter()
    first = None
    for s in shards:
        parts = []
        for b in s.batches:
            parts.append(summarise_batch(model, corpus.ids[b], [corpus.texts[i] for i in b], 10, 3))
            if first is None:
                first = (time.perf_counter(), len(b))
        write_part(part_path(out, s.start, s.end), merge(parts), {"start": s.start, "end": s.end})
    summary = merge(read_part(part_path(out, s.start, s.end))[0] for s in shards)
    write_results(out, summary, corpus.text, {"model": "minilm"})
    t2 = time.perf_counter()
    return {"texts": len(corpus), "total_s": t2 - t0, "load_s": t1 - t0,
            "steady_tps": (len(corpus) - first[1]) / (t2 - first[0])}


def on_ray(path: Path, out: Path, batch: int, shard: int, workers: int) -> dict:
    """The pipeline on a local Ray of ``workers`` CPUs, started and stopped here."""
    from attnviz.corpus.pipeline import CorpusJob, run_corpus

    marks: list[tuple[float, int]] = []
    t0 = time.perf_counter()
    info = run_corpus(CorpusJob("minilm", path, out, batch=batch, shard=shard, workers=workers),
                      lambda done, total: marks.append((time.perf_counter(), done)))
    t2 = time.perf_counter()
    first = next((t, d) for t, d in marks if d > 0)
    return {"texts": info["texts"] + info["skipped"], "total_s": t2 - t0, "load_s": first[0] - t0,
            "steady_tps": (marks[-1][1] - first[1]) / (marks[-1][0] - first[0])}


def compare(n: int, workers: int, batch: int, shard: int, tmp: Path, loop_threads: int | None = None) -> None:
    path = write_sentences(tmp / "compare.txt", n)
    import ray

    ray.init(address="local", num_cpus=workers, include_dashboard=False, logging_level="WARNING")
    try:
        r = on_ray(path, tmp / "ray", batch, shard, workers)
    finally:
        ray.shutdown()
    p = in_process(path, tmp / "loop", batch, shard, loop_threads)
    print(f"\n{n} texts, batch {batch}, shard {shard}")
    print(f"{'':32}{'total s':>9}{'start s':>9}{'texts/s':>9}{'steady texts/s':>16}")
    loop = f"one process, {loop_threads or 'default'} thread(s)"
    for name, x in ((f"Ray, {workers} actors", r), (loop, p)):
        print(f"{name:32}{x['total_s']:9.1f}{x['load_s']:9.1f}{x['texts'] / x['total_s']:9.1f}"
              f"{x['steady_tps']:16.1f}")
    print(f"Ray / one process: end to end {p['total_s'] / r['total_s']:.2f}x, "
          f"steady {r['steady_tps'] / p['steady_tps']:.2f}x (target >= 0.8x)")


def cpu_per_text(n: int, batch: int, shard: int, tmp: Path) -> None:
    """CPU seconds per text of the actors' work, in this process on one torch thread (model loaded and warm)."""
    import torch

    from attnviz.corpus.inputs import read_corpus
    from attnviz.corpus.plan import plan
    from attnviz.corpus.worker import StatsWorker

    torch.set_num_threads(1)
    corpus = read_corpus(write_sentences(tmp / "cpu.txt", n, seed=2))
    worker = StatsWorker("minilm", 10, 3)
    batches = [(s.start, j, corpus.ids[b], [corpus.texts[i] for i in b]) for s in plan(corpus, shard, batch)
               for j, b in enumerate(s.batches)]
    worker.summarise(*batches[0])  # warm
    c0, t0 = time.process_time(), time.perf_counter()
    for b in batches:
        worker.summarise(*b)
    c1, t1 = time.process_time(), time.perf_counter()
    tokens = sum(len(ids) for ids in worker.model.tokenizer(corpus.texts)["input_ids"])
    print(f"\nactor work, {n} sentences ({tokens / n:.1f} tokens each), batch {batch}, one thread: "
          f"{1000 * (c1 - c0) / n:.2f} ms CPU per text ({1000 * (t1 - t0) / n:.2f} ms wall), "
          f"{n / (c1 - c0):.0f} texts per CPU second")


def large(n: int, batch: int, shard: int, tmp: Path) -> None:
    path = write_sentences(tmp / "large.txt", n, seed=1)
    out = tmp / "large"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "attnviz", "corpus", "--model", "minilm", "--input", str(path),
                    "--out", str(out), "--batch", str(batch), "--shard", str(shard)], check=True, cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t0
    info = json.loads((out / "corpus.json").read_text())
    print(f"\n{n} sentences through the CLI: {wall / 60:.1f} min wall ({info['texts']} texts, {info['tokens']} "
          f"tokens, {info['compute_seconds']:.0f} s computing, {info['texts_per_second']:.0f} texts/s; "
          f"target <= 15 min)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compare", type=int, default=2000, help="texts for Ray vs one process (0: skip)")
    ap.add_argument("--large", type=int, default=100_000, help="texts for the large run (0: skip)")
    ap.add_argument("--cpu", type=int, default=0, help="texts for the CPU time per text of the actors' work")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--loop-threads", type=int, default=None,
                    help="torch threads of the one-process loop (default: torch's, one per core). On a busy machine "
                         "OpenMP's threads wait on each other: 1 thread can be the faster loop")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--shard", type=int, default=1024)
    ap.add_argument("--max-load", type=float, default=1.5, help="skip the large run above this 1-min load")
    ap.add_argument("--force", action="store_true", help="run the large run whatever the load")
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="attnviz-corpus-bench-") as d:
        tmp = Path(d)
        if args.cpu:
            cpu_per_text(args.cpu, args.batch, args.shard, tmp)
        if args.compare:
            compare(args.compare, args.workers, args.batch, args.shard, tmp, args.loop_threads)
        if args.large:
            load = os.getloadavg()[0]
            if load >= args.max_load and not args.force:
                print(f"\nlarge run skipped: load average {load:.2f} >= {args.max_load} (the machine is busy; "
                      "--force runs it anyway)")
            else:
                large(args.large, args.batch, args.shard, tmp)


if __name__ == "__main__":
    main()
