"""What the explanations cost: wall time and the peak rise of resident memory of gradient relevance
(:mod:`attnviz.models.relevance`) and ALTI (:mod:`attnviz.models.alti`) by input length. Each figure is taken in a
fresh process (so no heap left by an earlier call hides the rise), after a warm-up call on 16 tokens. The figures
behind ``TEXT_MAX_TOKENS`` and ``MAX_WORK``. Asserts nothing.

Usage::

    .venv/bin/python bench/explain_cost.py                       # SmolLM2 and MiniLM at 64..512 tokens, the images
    .venv/bin/python bench/explain_cost.py --model smollm2-135m --lengths 256 512
"""
from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import attnviz  # noqa: E402
from attnviz.models import alti as alti_mod  # noqa: E402
from attnviz.models import relevance as relevance_mod  # noqa: E402

log = logging.getLogger("explain_cost")
WORDS = ("the quick brown fox jumps over a lazy dog while birds sing in tall green trees near the old river "
         "and children play with a red ball on warm summer evenings before dinner").split()


def status_mb(field: str) -> float:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(call) -> tuple[float, float]:
    """Wall seconds and the peak rise of resident memory (MB) of ``call()``."""
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
    rss0, t0 = status_mb("VmRSS"), time.perf_counter()
    call()
    return time.perf_counter() - t0, status_mb("VmHWM") - rss0


def ids_of(model, n: int) -> list[int]:
    ids = model.tokenizer(" ".join(WORDS * (n // 10 + 2)))["input_ids"]
    return ids[:n - 1] + ids[-1:] if len(ids) >= n else ids


def one(name: str, n: int, method: str) -> str:
    """``seconds MB`` of one method on one input, in this process."""
    relevance_mod.TEXT_MAX_TOKENS = 1 << 20  # measure past the bounds too
    alti_mod.MAX_WORK = float("inf")
    m = attnviz.load_model(name)
    if m.kind == "image":
        image = ROOT / "assets" / "examples" / "cat.jpg"
        call = (lambda: m.relevance(image=image)) if method == "relevance" else (lambda: alti_mod.alti(m, image=image))
        call()
    else:
        ids = ids_of(m, min(n, m.max_tokens))
        warm = ids_of(m, 16)
        if method == "relevance":
            m.relevance(ids=warm)
            call = lambda: m.relevance(ids=ids)  # noqa: E731
        else:
            alti_mod.alti(m, ids=warm)
            call = lambda: alti_mod.alti(m, ids=ids)  # noqa: E731
    seconds, mb = measure(call)
    return f"{seconds:.2f} {mb:.0f}"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", nargs="*", default=["smollm2-135m", "minilm"])
    p.add_argument("--lengths", nargs="*", type=int, default=[64, 128, 256, 512])
    p.add_argument("--images", nargs="*", default=["shapes-vit", "vit-fashion", "dinov2-small"])
    p.add_argument("--one", nargs=3, metavar=("MODEL", "TOKENS", "METHOD"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    if args.one:
        print(one(args.one[0], int(args.one[1]), args.one[2]))
        return

    def child(name: str, n: int, method: str) -> tuple[str, str]:
        out = subprocess.run([sys.executable, __file__, "--one", name, str(n), method], capture_output=True,
                             text=True, check=True).stdout.split()
        return out[-2], out[-1]

    print("| model | tokens | relevance s | relevance +MB | ALTI s | ALTI +MB |")
    print("|---|---|---|---|---|---|")
    for name in args.model + args.images:
        image = name in args.images
        for n in [0] if image else args.lengths:
            m_causal = name.startswith("smollm") or image and name != "dinov2-small"
            rel = child(name, n, "relevance") if m_causal else ("-", "-")
            alt = child(name, n, "alti")
            label = "image" if image else n
            print(f"| {name} | {label} | {rel[0]} | {rel[1]} | {alt[0]} | {alt[1]} |", flush=True)


if __name__ == "__main__":
    main()
