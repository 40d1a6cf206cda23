"""Long inputs: what a result holds (``r.nbytes``), the process's memory growth during a run, and the time from a
run to every head drawable (the run, then ``overview`` at the Text page's thumbnail size; a SmolLM2 run makes it as
it goes, as the Text page asks), for MiniLM at 512 tokens, SmolLM2-135M at 2,048 and 4,096 tokens and DINOv2 at 224
and 448 px.

    .venv/bin/python -m bench.long_inputs [--lengths 512 2048 4096] [--only-smollm] [--exact-heads]

Memory: RSS just before each run and the process's peak RSS after it (``ru_maxrss``, a high-water mark, so each
case's growth counts only what goes past the largest earlier peak; cases run from small to large). ``--exact-heads``
also compares every head of SmolLM2 at 4,096 tokens with transformers' eager weights (one eager forward more and
270 heads recomputed, ~2 min). Not a timed test: the figures go to the README by hand.
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np
from PIL import Image

import attnviz
from attnviz.render.raster import fit_cell
from bench.common import make_text, single_token_words

ROOT_EXAMPLE = "assets/examples/cat.jpg"


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(name: str, run, cell: int) -> tuple[dict, object]:
    before = rss()
    t0 = time.perf_counter()
    r = run()
    t_run = time.perf_counter() - t0
    t0 = time.perf_counter()
    r.overview(cell)
    t_overview = time.perf_counter() - t0
    row = {"case": name, "tokens": r.n_tokens, "nbytes_MB": r.nbytes / 1e6, "weights_MB": r.weights_nbytes / 1e6,
           "run_s": t_run, "overview_s": t_overview, "rss_before_MB": before / 1e6,
           "peak_growth_MB": max(0, peak() - before) / 1e6}
    print(f"{name:<24} {r.n_tokens:>6} tokens  r.nbytes {row['nbytes_MB']:8.1f} MB  (full weights "
          f"{row['weights_MB']:9.1f} MB)  run {t_run:6.2f} s  overview({cell}) {t_overview:6.2f} s  "
          f"run->all heads {t_run + t_overview:6.2f} s  RSS {before / 2**20:7.0f} MiB, peak growth "
          f"{row['peak_growth_MB']:7.0f} MB", flush=True)
    return row, r


def smollm_text(model, n: int) -> str:
    words = "the model reads a long text and every head attends to earlier tokens in its own way".split()
    text = " ".join(words[i % len(words)] for i in range(n * 2))
    ids = model.tokenizer(text)["input_ids"][:n]
    return model.tokenizer.decode(ids)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[512, 2048, 4096], help="SmolLM2 input lengths")
    p.add_argument("--only-smollm", action="store_true", help="leave out MiniLM and DINOv2")
    p.add_argument("--exact-heads", action="store_true", help="compare every head at 4,096 tokens with eager")
    args = p.parse_args()
    minilm, smollm, dinov2 = (attnviz.load_model(n) for n in ("minilm", "smollm2-135m", "dinov2-small"))
    cat = Image.open(ROOT_EXAMPLE).convert("RGB")
    print(f"peak RSS with the three models loaded: {peak() / 2**20:.0f} MiB")
    if not args.only_smollm:
        pool = single_token_words(minilm.tokenizer)
        measure("minilm 512", lambda: minilm.run(text=make_text(pool, 512, "long")), fit_cell(6))
        measure("dinov2 224 px", lambda: dinov2.run(image=cat), 128)
        measure("dinov2 448 px", lambda: dinov2.run(image=cat, image_size=448), 128)
        measure("dinov2 518 px", lambda: dinov2.run(image=cat, image_size=518), 128)
    result = None
    for n in sorted(args.lengths):
        text = smollm_text(smollm, n)
        cell = fit_cell(30)
        _, result = measure(f"smollm2 {n}", lambda text=text, cell=cell: smollm.run(text=text, overview=cell), cell)
    if args.exact_heads and result is not None and result.n_tokens >= 4096:
        import torch

        from attnviz.models import capture

        enc = dict(smollm.tokenizer(smollm_text(smollm, 4096), return_tensors="pt"))
        base, worst = smollm.reader.base, {}

        def hook(module, _args, output):
            layer = getattr(module, capture._LAYER)
            for h in range(output[1].shape[1]):
                worst[(layer, h)] = float(np.abs(result.head(layer, h) - output[1][0, h].numpy()).max())

        handles = [m.register_forward_hook(hook) for m in base.modules() if hasattr(m, capture._LAYER)]
        base.set_attn_implementation("eager")
        try:
            with torch.inference_mode():
                base(**enc, use_cache=False)
        finally:
            base.set_attn_implementation(capture.IMPLEMENTATION)
            for h in handles:
                h.remove()
        (layer, h), d = max(worst.items(), key=lambda item: item[1])
        print(f"every head at 4,096 tokens against eager ({len(worst)} heads): largest |head - eager| {d:.1e} "
              f"(L{layer}H{h}); heads equal bit for bit: {sum(v == 0 for v in worst.values())}")


if __name__ == "__main__":
    main()
