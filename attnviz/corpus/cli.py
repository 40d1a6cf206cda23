"""``python -m attnviz corpus --model minilm --input FILE --out DIR [--address auto|ray://...]``."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger("attnviz.cli")

EPILOG = """Writes DIR/heads.parquet (per layer, head and statistic: count, mean, std, min, max, histogram),
DIR/top.parquet (the top texts of each head and statistic, with the token positions that made the value) and
DIR/corpus.json (model, input hash, counts, time taken). Rerunning the same command into the same DIR skips
the shards already done."""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``corpus`` subcommand to the CLI's subparsers."""
    c = sub.add_parser("corpus", help="head statistics over a corpus, on Ray (a local Ray by default)",
                       description="Per-head attention statistics over many texts, computed on Ray Data.",
                       epilog=EPILOG)
    c.add_argument("--model", default="minilm", help="a text model name or a local model directory (default: minilm)")
    c.add_argument("--input", required=True, type=Path,
                   help="a .txt (one text per line), .jsonl (field \"text\") or .parquet (column \"text\") file")
    c.add_argument("--out", required=True, type=Path, help="output folder (rerun into it to resume)")
    c.add_argument("--address", default=None,
                   help="Ray cluster to run on: auto, or ray://HOST:PORT (default: start a local Ray)")
    c.add_argument("--limit", type=_positive, default=None, help="only the first N texts")
    c.add_argument("--batch", type=_positive, default=64, help="texts per batch (default: 64)")
    c.add_argument("--shard", type=_positive, default=1024,
                   help="texts per shard, the unit a rerun skips (default: 1024)")
    c.add_argument("--top-k", type=_positive, default=10, help="top texts kept per head and statistic (default: 10)")
    c.add_argument("--positions", type=_positive, default=3,
                   help="(query, key) token positions kept per top text (default: 3)")
    c.add_argument("--workers", type=_positive, default=None,
                   help="model actors (default: one per free CPU of the cluster)")
    c.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Run the ``corpus`` subcommand: 0 when done, 2 for bad input or options, 1 for a file error, 130 when
    interrupted."""
    from tqdm import tqdm

    from attnviz.corpus.pipeline import CorpusJob, run_corpus

    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled": ours show
    job = CorpusJob(model=args.model, input=args.input, out=args.out, address=args.address, limit=args.limit,
                    batch=args.batch, shard=args.shard, top_k=args.top_k, positions=args.positions,
                    workers=args.workers)
    bars: list[tqdm] = []  # made at the first call, when the total and the texts already done are known

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, initial=done, unit="text", desc="texts", file=sys.stderr,
                             dynamic_ncols=True, smoothing=0.1))
        bars[0].update(done - bars[0].n)

    try:
        info = run_corpus(job, progress)
    except ValueError as e:
        _close(bars)
        sys.stderr.write(f"attnviz: {e}\n")
        return 2
    except OSError as e:
        _close(bars)
        where = f": {e.filename}" if e.filename else ""
        sys.stderr.write(f"attnviz: {e.strerror or e}{where}\n")
        return 1
    except KeyboardInterrupt:
        _close(bars)
        sys.stderr.write(f"attnviz: interrupted; rerun the same command to resume from the shards in {args.out}\n")
        return 130
    _close(bars)
    sys.stdout.write(f"{info['texts']} texts summarised, {info['skipped']} skipped (no token the model reads); "
                     f"{info['computed']} computed now, {info['resumed']} from earlier parts; "
                     f"{info['seconds']:.1f} s -> {args.out}\n")
    return 0


def _close(bars: list) -> None:
    for bar in bars:
        bar.close()
