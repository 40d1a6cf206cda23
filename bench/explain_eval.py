"""Which explanation holds up: a rerunnable evaluation of every explanation method of attnviz on three sets.

* **shapes** (shapes-vit): fresh images of the generator in ``attnviz/train/shapes.py`` from a fixed seed that the
  model was neither trained nor tested on, with their ground-truth boxes: the pointing game (is the top patch inside
  the object's box, :func:`attnviz.train.shapes.patch_in_box`) and the deletion and insertion areas per method.
* **Fashion-MNIST** (vit-fashion): a seeded sample of the test set (Debian ``dataset-fashion-mnist``): the deletion and
  insertion areas per method.
* **SmolLM2**: sentences made from templates with a seeded generator (nothing downloaded): the deletion and insertion
  areas of the next token's probability per method.

The target is the model's prediction (the predicted class, the most probable next token), as in the app. Curves and
areas as in :mod:`attnviz.analysis.faithfulness` (x from 0 to 1, area = trapezoid x 100; deletion: lower is more
faithful; insertion: higher is); removal as in :mod:`attnviz.models.perturb` (patches -> the normalisation mean,
tokens dropped). Writes a Markdown table between marker comments in ``docs/explanations.md`` (regenerated in place)
and prints it. Asserts nothing.

Usage::

    .venv/bin/python bench/explain_eval.py                     # full size: 500 shapes, 500 Fashion-MNIST, 200 sentences
    .venv/bin/python bench/explain_eval.py --quick --out -     # a smoke run, printed only
"""
from __future__ import annotations

import argparse
import json
import logging
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

import attnviz  # noqa: E402
from attnviz.models.faithful import LABELS, METHODS, faithfulness  # noqa: E402
from attnviz.train import shapes as shapes_data  # noqa: E402

log = logging.getLogger("explain_eval")
START, END = "<!-- explain-eval:start -->", "<!-- explain-eval:end -->"
SHAPES_SEED = 20270127  # not a seed shapes-vit was trained (1) or tested (2) on
FASHION_SEED = 0
SENTENCE_SEED = 0

NAMES = ["Anna", "Tom", "Maria", "James", "Lena", "Omar", "Sofia", "Peter", "Yuki", "David"]
ANIMALS = ["cat", "dog", "horse", "rabbit", "fox", "bird", "cow", "mouse"]
PLACES = ["park", "garden", "kitchen", "station", "library", "beach", "forest", "market"]
COUNTRIES = ["France", "Italy", "Spain", "Japan", "Germany", "Canada", "Egypt", "Brazil", "Norway", "India"]
FOODS = ["bread", "cheese", "soup", "apples", "rice", "cake", "fish", "milk"]
THINGS = ["bicycle", "phone", "lamp", "chair", "laptop", "coat", "umbrella", "clock"]
TEMPLATES = [
    "The capital of {country} is",
    "{name} opened the door of the {place} and saw a",
    "In the morning, {name} always drinks a cup of",
    "The {animal} slept all afternoon under the",
    "{name} put the {food} in the",
    "After the rain, the children played in the",
    "The {animal} ran across the {place} to find its",
    "{name} bought a new {thing} because the old one was",
    "{name} and {name2} went to the {place} to buy some",
    "Every summer, my family travels to {country} to see the",
    "The {thing} on the table belongs to",
    "When the {animal} saw the {food}, it",
    "{name} forgot the {thing} at the {place}, so",
    "The people of {country} speak",
    "To make the {food}, you first need to",
]


def sentences(n: int, seed: int = SENTENCE_SEED) -> list[str]:
    """``n`` distinct prompts from :data:`TEMPLATES`, the same for a seed."""
    rng, out, seen = random.Random(seed), [], set()
    while len(out) < n:
        name, name2 = rng.sample(NAMES, 2)
        s = rng.choice(TEMPLATES).format(name=name, name2=name2, animal=rng.choice(ANIMALS),
                                         place=rng.choice(PLACES), country=rng.choice(COUNTRIES),
                                         food=rng.choice(FOODS), thing=rng.choice(THINGS))
        if s not in seen:
            seen.add(s)
            out.append(s)
        if len(seen) > 50 * n:
            raise ValueError(f"the templates give fewer than {n} distinct sentences")
    return out


class Tally:
    """Areas and pointing-game hits per method over a set."""

    def __init__(self) -> None:
        self.auc: dict[tuple[str, str], list[float]] = {}
        self.hits: dict[str, list[float]] = {}
        self.correct: list[bool] = []
        self.skipped: dict[str, int] = {}
        self.seconds = 0.0

    def add(self, f, hit: dict[str, float] | None = None) -> None:
        for c in f.curves:
            self.auc.setdefault((c.method, c.mode), []).append(c.auc)
        for m in f.explanations.skipped:
            self.skipped[m] = self.skipped.get(m, 0) + 1
        for m, h in (hit or {}).items():
            self.hits.setdefault(m, []).append(h)

    def mean(self, method: str, mode: str) -> tuple[float, float, int]:
        """Mean, its standard error and the count."""
        v = np.asarray(self.auc.get((method, mode), []))
        if not len(v):
            return float("nan"), float("nan"), 0
        return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0, len(v)


def pointing(scores: np.ndarray, cols: int, box: np.ndarray) -> float:
    """The pointing game: 1 when the top patch lies in the box. Flow often ties many patches at its top (the max-flow
    saturates at a bottleneck): then the share of the tied top patches in the box, the expected hit of a random pick."""
    top = np.flatnonzero(np.isclose(scores, scores.max(), rtol=1e-6, atol=0))
    return float(np.mean([shapes_data.patch_in_box(*divmod(int(k), cols), box) for k in top]))


def run_shapes(n: int, steps: int) -> Tally:
    m = attnviz.load_model("shapes-vit")
    data = shapes_data.generate(n, SHAPES_SEED)
    t, t0 = Tally(), time.perf_counter()
    for i in range(n):
        f = faithfulness(m, image=Image.fromarray(data.images[i]), max_steps=steps)
        hit = {meth: pointing(s, m.grid[1], data.boxes[i]) for meth, s in f.explanations.scores.items()}
        t.add(f, hit)
        t.correct.append(f.explanations.target == int(data.labels[i]))
        if (i + 1) % 50 == 0:
            log.info("shapes %d/%d", i + 1, n)
    t.seconds = time.perf_counter() - t0
    return t


def run_fashion(n: int, steps: int) -> Tally:
    from attnviz.train.vit_fashion import read_split

    m = attnviz.load_model("vit-fashion")
    x, y = read_split("t10k")
    pick = np.random.default_rng(FASHION_SEED).choice(len(x), size=n, replace=False)
    t, t0 = Tally(), time.perf_counter()
    for k, i in enumerate(pick):
        f = faithfulness(m, image=Image.fromarray(x[i]).convert("RGB"), max_steps=steps)
        t.add(f)
        t.correct.append(f.explanations.target == int(y[i]))
        if (k + 1) % 50 == 0:
            log.info("fashion %d/%d", k + 1, n)
    t.seconds = time.perf_counter() - t0
    return t


def run_text(n: int, steps: int) -> Tally:
    m = attnviz.load_model("smollm2-135m")
    t, t0 = Tally(), time.perf_counter()
    for k, s in enumerate(sentences(n)):
        t.add(faithfulness(m, text=s, max_steps=steps))
        if (k + 1) % 20 == 0:
            log.info("sentences %d/%d", k + 1, n)
    t.seconds = time.perf_counter() - t0
    return t


def fmt(mean: float, se: float) -> str:
    return "–" if np.isnan(mean) else f"{mean:.1f} ± {se:.1f}"


def table(sets: dict[str, Tally], sizes: dict[str, int], steps: int, total: float) -> str:
    """The Markdown that goes between the markers."""
    lines = [f"Measured by `bench/explain_eval.py` on {time.strftime('%Y-%m-%d')} (Python {platform.python_version()}, "
             f"{total / 60:.0f} min on a shared 2-core machine). Areas in percentage points, mean ± standard error "
             f"over the inputs; deletion: lower is more faithful, insertion: higher is. At most {steps} steps per "
             "curve (every patch of the tiny ViTs, every token of the prompts).", ""]
    head = "| method |" + "".join(
        f" {name}: {what} |" for name in sets for what in
        (["pointing game", "deletion", "insertion"] if name == "shapes" else ["deletion", "insertion"]))
    lines += [head, "|---" * (head.count("|") - 1) + "|"]
    for meth in METHODS:
        cells = []
        for name, t in sets.items():
            if name == "shapes":
                h = t.hits.get(meth, [])
                cells.append(f"{100 * np.mean(h):.1f} %" if h else "–")
            cells += [fmt(*t.mean(meth, mode)[:2]) for mode in ("deletion", "insertion")]
        lines.append(f"| {LABELS[meth]} | " + " | ".join(cells) + " |")
    lines.append("")
    for name, t in sets.items():
        best_d = min(METHODS, key=lambda m: t.mean(m, "deletion")[0] if t.mean(m, "deletion")[2] else np.inf)
        best_i = max(METHODS, key=lambda m: t.mean(m, "insertion")[0] if t.mean(m, "insertion")[2] else -np.inf)
        acc = f", the model right on {100 * np.mean(t.correct):.1f} %" if t.correct else ""
        skipped = "".join(f"; {m} left out on {c} inputs (too slow)" for m, c in t.skipped.items())
        lines.append(f"- **{name}** ({sizes[name]} inputs{acc}, {t.seconds:.0f} s): most faithful by deletion "
                     f"{LABELS[best_d]}, by insertion {LABELS[best_i]}{skipped}.")
    if "shapes" in sets:
        rel, ro = (np.asarray(sets["shapes"].hits.get(m, [])) for m in ("relevance", "rollout"))
        if len(rel) and len(ro):
            lines.append(f"- **Pointing game, gradient relevance against rollout** (shapes): {100 * rel.mean():.1f} % "
                         f"against {100 * ro.mean():.1f} % of {len(rel)} images, a difference of "
                         f"{100 * (rel.mean() - ro.mean()):+.1f} points; relevance inside and rollout outside on "
                         f"{int(((rel == 1) & (ro == 0)).sum())} images, the reverse on "
                         f"{int(((rel == 0) & (ro == 1)).sum())}. Flow ties many patches at its top; they count by "
                         "the share of them inside the box.")
    return "\n".join(lines)


def write(doc: Path, body: str) -> None:
    """Replace what is between the markers of ``doc`` (or append a section with them)."""
    text = doc.read_text(encoding="utf-8") if doc.is_file() else "# Explanations\n"
    block = f"{START}\n{body}\n{END}"
    if START in text and END in text:
        text = text[:text.index(START)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + f"\n\n## Evaluation\n\n{block}\n"
    doc.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", type=int, default=500, help="shapes images (0: skip)")
    p.add_argument("--fashion", type=int, default=500, help="Fashion-MNIST test images (0: skip)")
    p.add_argument("--sentences", type=int, default=200, help="SmolLM2 prompts (0: skip)")
    p.add_argument("--steps", type=int, default=64, help="at most this many perturbation steps per curve")
    p.add_argument("--quick", action="store_true", help="20 shapes, 20 Fashion-MNIST images, 10 sentences")
    p.add_argument("--out", default=str(ROOT / "docs" / "explanations.md"), help="Markdown file, or - to print only")
    p.add_argument("--json", type=Path, default=None, help="also write every area and hit here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("attnviz").setLevel(logging.WARNING)
    if args.quick:
        args.shapes, args.fashion, args.sentences = 20, 20, 10
    t0 = time.perf_counter()
    sets, sizes = {}, {}
    for name, n, run in (("shapes", args.shapes, run_shapes), ("Fashion-MNIST", args.fashion, run_fashion),
                         ("SmolLM2", args.sentences, run_text)):
        if n > 0:
            sets[name], sizes[name] = run(n, args.steps), n
    body = table(sets, sizes, args.steps, time.perf_counter() - t0)
    print(body)
    if args.out != "-":
        write(Path(args.out), body)
        log.info("wrote %s", args.out)
    if args.json:
        args.json.write_text(json.dumps({name: {"auc": {f"{m}/{mode}": v for (m, mode), v in t.auc.items()},
                                                "hits": t.hits, "correct": t.correct, "seconds": t.seconds}
                                         for name, t in sets.items()}, default=bool), encoding="utf-8")


if __name__ == "__main__":
    main()
