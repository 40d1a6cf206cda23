"""Dates written the way people write them, and the training of ``date-seq2seq`` that turns them into ISO dates.

The generator writes one calendar date in one of :data:`FORMATS` ("21 November 2026", "Nov 21, 2026",
"11/21/2026", "2026.11.21", "Saturday, the 21st of November 2026", ...); the target is ``2026-11-21``.
Conventions (so that every input has one right answer): slashes with the year last are month first (US),
dots or dashes with the year last are day first, a year first is always year-month-day; years have four digits.

Held-out dates never appear in training: a date is held out when its proleptic Gregorian ordinal is divisible
by :data:`HOLDOUT_EVERY`.

Rebuild the shipped weights (seeded, one CPU thread; the same command rebuilt the shipped safetensors bit for bit;
2500 steps took 577-594 s on a machine shared with other jobs (load ~10 on 2 cores), ~80 ms/step when idle)::

    python -m attnviz.train.dates            # writes assets/models/date-seq2seq.{safetensors,json}
    python -m attnviz.train.dates --evaluate-only   # re-measure the shipped weights, update the JSON
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import string
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FIRST_YEAR, LAST_YEAR = 1000, 2999
HOLDOUT_EVERY = 13
"""A date whose ordinal is a multiple of this is held out (never trained on)."""

FORMATS: tuple[str, ...] = (
    "{d} {Month} {Y}",                   # 21 November 2026
    "{d} {Mon} {Y}",                     # 21 Nov 2026
    "{d} {Month}, {Y}",                  # 21 November, 2026
    "{Mon} {d}, {Y}",                    # Nov 21, 2026
    "{Mon}. {d}, {Y}",                   # Nov. 21, 2026
    "{Month} {d}, {Y}",                  # November 21, 2026
    "{Month} {d} {Y}",                   # November 21 2026
    "{Month} {dth}, {Y}",                # November 21st, 2026
    "{Month} the {dth}, {Y}",            # November the 21st, 2026
    "{dth} {Month} {Y}",                 # 21st November 2026
    "{dth} of {Month} {Y}",              # 21st of November 2026
    "the {dth} of {Month}, {Y}",         # the 21st of November, 2026
    "{Weekday}, the {dth} of {Month} {Y}",  # Saturday, the 21st of November 2026
    "{Weekday}, {Month} {d}, {Y}",       # Saturday, November 21, 2026
    "{Weekday} {d} {Month} {Y}",         # Saturday 21 November 2026
    "{Wkd}, {d} {Mon} {Y}",              # Sat, 21 Nov 2026
    "{Wkd} {Mon} {d} {Y}",               # Sat Nov 21 2026
    "{m}/{d}/{Y}",                       # 11/21/2026 (US: month first)
    "{mm}/{dd}/{Y}",                     # 11/21/2026, zero-padded
    "{dd}.{mm}.{Y}",                     # 21.11.2026 (day first)
    "{d}.{m}.{Y}",                       # 21.11.2026, not padded
    "{dd}-{mm}-{Y}",                     # 21-11-2026 (day first)
    "{dd}-{Mon}-{Y}",                    # 21-Nov-2026
    "{Y}.{mm}.{dd}",                     # 2026.11.21
    "{Y}/{mm}/{dd}",                     # 2026/11/21
    "{Y}-{mm}-{dd}",                     # 2026-11-21 (already ISO)
    "{Y}{mm}{dd}",                       # 20261121
    "{Y} {Month} {d}",                   # 2026 November 21
    "{Y}, {Mon} {d}",                    # 2026, Nov 21
)

SOURCE_CHARS = " ,./-'" + string.digits + string.ascii_lowercase
"""Characters the model reads (input is lower-cased and its runs of white space collapsed first)."""
TARGET_CHARS = string.digits + "-"


def ordinal_suffix(day: int) -> str:
    """``1 -> "st"``, ``2 -> "nd"``, ``3 -> "rd"``, ``11..13 -> "th"``, ``21 -> "st"``..."""
    if 11 <= day % 100 <= 13:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def fields(date: dt.date, rng: np.random.Generator | None = None) -> dict[str, str]:
    """The pieces a format may use, for one date (abbreviations vary a little when ``rng`` is given)."""
    mon = MONTHS[date.month - 1][:3]
    if date.month == 9 and rng is not None and rng.random() < 0.3:
        mon = "Sept"
    return {
        "d": str(date.day), "dd": f"{date.day:02d}", "dth": f"{date.day}{ordinal_suffix(date.day)}",
        "m": str(date.month), "mm": f"{date.month:02d}", "Month": MONTHS[date.month - 1], "Mon": mon,
        "Y": f"{date.year:04d}", "Weekday": WEEKDAYS[date.weekday()], "Wkd": WEEKDAYS[date.weekday()][:3],
    }


def render(date: dt.date, fmt: str, rng: np.random.Generator | None = None) -> tuple[str, tuple[int, int]]:
    """Write ``date`` in format ``fmt``.

    Returns:
        (text, (start, end)) where ``text[start:end]`` is the year.
    """
    values = fields(date, rng)
    out, span = [], (0, 0)
    for literal, name, _, _ in string.Formatter().parse(fmt):
        out.append(literal)
        if name is not None:
            start = sum(map(len, out))
            out.append(values[name])
            if name == "Y":
                span = (start, start + len(values[name]))
    return "".join(out), span


@dataclass(frozen=True)
class DateExample:
    """One generated pair."""

    text: str                   # the date as a person writes it
    iso: str                    # the target, YYYY-MM-DD
    year_span: tuple[int, int]  # text[start:end] is the year
    fmt: str                    # the format it was written in


FIRST_ORDINAL = dt.date(FIRST_YEAR, 1, 1).toordinal()
LAST_ORDINAL = dt.date(LAST_YEAR, 12, 31).toordinal()


def random_date(rng: np.random.Generator, held_out: bool) -> dt.date:
    """A uniformly random date in the years :data:`FIRST_YEAR`..:data:`LAST_YEAR`, from the training or the
    held-out part."""
    if held_out:
        lo = -(-FIRST_ORDINAL // HOLDOUT_EVERY)
        k = int(rng.integers(lo, LAST_ORDINAL // HOLDOUT_EVERY + 1))
        return dt.date.fromordinal(k * HOLDOUT_EVERY)
    while True:
        o = int(rng.integers(FIRST_ORDINAL, LAST_ORDINAL + 1))
        if o % HOLDOUT_EVERY:
            return dt.date.fromordinal(o)


def generate(n: int, seed: int, held_out: bool = False) -> list[DateExample]:
    """``n`` examples, each a random date in a random format (reproducible from ``seed``)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        date = random_date(rng, held_out)
        fmt = FORMATS[int(rng.integers(len(FORMATS)))]
        text, span = render(date, fmt, rng)
        out.append(DateExample(text, date.isoformat(), span, fmt))
    return out


# ---------------------------------------------------------------------------------------------- training

@dataclass
class TrainConfig:
    """Training settings of ``date-seq2seq``."""

    seed: int = 0
    steps: int = 2500          # optimiser steps
    batch: int = 128           # examples per step (fresh random examples every step)
    lr: float = 2e-3           # peak learning rate (linear warm-up, cosine decay)
    warmup: int = 200          # warm-up steps
    threads: int = 1           # torch CPU threads (1: bitwise reproducible, and faster on a busy machine)
    n_eval: int = 2000         # held-out examples for the recorded accuracy
    eval_seed: int = 12345     # seed of the held-out set


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * t))


def train(cfg: TrainConfig, out_dir: Path, progress: Callable[[str], None] | None = None) -> dict:
    """Train ``date-seq2seq`` from scratch and write its weights and metadata to ``out_dir``.

    Returns:
        The metadata written to ``date-seq2seq.json`` (config, vocabulary, held-out accuracy, timings).
    """
    import torch
    from safetensors.torch import save_file

    from attnviz.models.seq2seq import DateSeq2Seq, Seq2SeqConfig, Seq2SeqTransformer, Vocab

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    say = progress or log.info
    src_vocab, tgt_vocab = Vocab.source(SOURCE_CHARS), Vocab.target(TARGET_CHARS)
    mcfg = Seq2SeqConfig(src_vocab=len(src_vocab), tgt_vocab=len(tgt_vocab))
    net = Seq2SeqTransformer(mcfg)
    n_params = sum(p.numel() for p in net.parameters())
    say(f"model: {n_params} parameters, {mcfg}")
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=0.01, betas=(0.9, 0.98))
    rng = np.random.default_rng(cfg.seed)
    t0 = time.perf_counter()
    net.train()
    for step in range(cfg.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        batch = generate(cfg.batch, seed=int(rng.integers(2**31)))
        src = src_vocab.encode_batch([DateSeq2Seq.normalise(e.text) for e in batch], mcfg.max_src_len)
        tgt = tgt_vocab.encode_batch([e.iso for e in batch], mcfg.max_tgt_len, bos=True, eos=True)
        logits = net(src, tgt[:, :-1])  # [batch, target, vocab]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt[:, 1:].reshape(-1),
                                                 ignore_index=Vocab.PAD)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if step % 250 == 0 or step == cfg.steps - 1:
            say(f"step {step:5d}  loss {loss.item():.4f}  {time.perf_counter() - t0:.0f}s")
    train_s = time.perf_counter() - t0
    net.eval()

    heldout = evaluate(DateSeq2Seq(net, src_vocab, tgt_vocab), cfg.n_eval, cfg.eval_seed)
    say(f"held-out exact match: {heldout['exact_match']:.4f} on {cfg.n_eval} examples; trained in {train_s:.0f}s")

    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out_dir / "date-seq2seq.safetensors"))
    meta = {
        "name": "date-seq2seq",
        "config": asdict(mcfg),
        "source_chars": src_vocab.chars, "target_chars": tgt_vocab.chars,
        "train": asdict(cfg),
        "parameters": n_params,
        "train_seconds": round(train_s, 1),
        "torch": torch.__version__,
        "heldout": heldout,
        "formats": list(FORMATS),
        "years": [FIRST_YEAR, LAST_YEAR],
    }
    (out_dir / "date-seq2seq.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return meta


def evaluate(model, n: int = 2000, seed: int = 12345) -> dict:
    """Exact match and year alignment of ``model`` (a ``DateSeq2Seq``) on ``n`` held-out generated dates.

    ``year_alignment``: share of examples whose four year characters are all written correctly and, for at least
    one cross-attention head (any layer), all attend most strongly to a character of the input's year.
    """
    held = generate(n, seed=seed, held_out=True)
    hits, aligned = [], []
    for start in range(0, n, 500):
        part = held[start:start + 500]
        outputs, crosses = model.cross_attention_batch([e.text for e in part])
        for e, out, cross in zip(part, outputs, crosses, strict=True):  # cross: [layer, head, output, input]
            hits.append(out == e.iso)
            top = cross[:, :, :4, :].argmax(-1)                           # [layer, head, 4]
            inside = (top >= e.year_span[0]) & (top < e.year_span[1])
            aligned.append(out[:4] == e.iso[:4] and bool(inside.all(-1).any()))
    per_format = {f: float(np.mean([h for h, e in zip(hits, held, strict=True) if e.fmt == f])) for f in FORMATS}
    return {"examples": n, "seed": seed, "exact_match": float(np.mean(hits)),
            "year_alignment": float(np.mean(aligned)),
            "rule": f"dates whose ordinal is a multiple of {HOLDOUT_EVERY} (never trained on)",
            "per_format": per_format}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Train date-seq2seq (dates in human formats -> ISO 8601).")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "assets" / "models")
    p.add_argument("--steps", type=int, default=TrainConfig.steps)
    p.add_argument("--seed", type=int, default=TrainConfig.seed)
    p.add_argument("--threads", type=int, default=TrainConfig.threads)
    p.add_argument("--evaluate-only", action="store_true",
                   help="re-measure the weights in --out and update the held-out figures of its JSON")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if a.evaluate_only:
        from attnviz.models.seq2seq import load_date_seq2seq

        meta_path = a.out / "date-seq2seq.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        cfg = TrainConfig(**meta["train"])
        meta["heldout"] = evaluate(load_date_seq2seq(a.out), cfg.n_eval, cfg.eval_seed)
        meta_path.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    else:
        meta = train(TrainConfig(seed=a.seed, steps=a.steps, threads=a.threads), a.out)
    log.info("%s: held-out exact match %.4f, year alignment %.4f", a.out, meta["heldout"]["exact_match"],
             meta["heldout"]["year_alignment"])


if __name__ == "__main__":
    main()
