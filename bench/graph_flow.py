"""Issue 4's figures: the head view (token-to-token line graph) in headless Chromium, and attention flow compute time.

Head view
    The real app (``streamlit run app.py``) opened at ``/Text?text_view=Head+view``; an input of exactly N MiniLM
    tokens ([CLS] and [SEP] included) is run, then the layer is changed ``--reps`` times with the Layer select box.
    Each time is from the click on the new layer's option to the graph drawn for that layer (not stale, its title
    naming the layer, N token labels in place), polled on animation frames; the median is printed. Edges: the
    page's default, top 3 per query token; "1 head" shows H0 (the page's default above 64 tokens), "12 heads" all
    heads of the layer (the default up to 64 tokens).

Attention flow
    ``attnviz.attention_flow`` (full ``[query, key]`` matrix) up to 64 tokens and ``flow_rows`` for one output
    token at every size; median of ``--flow-reps``. MiniLM: 6 layers. Then one token of each image model on its
    example picture (``flow_row``, what the Image page computes): DINOv2-S has 12 layers and 257 tokens.

The machine's load average is printed too: other work on the same cores slows both.

Usage::

    .venv/bin/python bench/graph_flow.py                     # ~3 min on 2 cores
    .venv/bin/python bench/graph_flow.py --no-browser --flow-sizes 16 32 64 128 256
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser import CHROMIUM, CHROMIUM_ARGS, chromium_missing_reason, streamlit_server, wait_idle  # noqa: E402


def single_token_words(tokenizer) -> list[str]:
    """Lower-case ASCII words that are one WordPiece token each (so n - 2 words + [CLS]/[SEP] = n tokens)."""
    words = sorted(w for w in tokenizer.get_vocab() if w.isascii() and w.isalpha() and w.islower() and len(w) > 2)
    ids = tokenizer(words, add_special_tokens=False)["input_ids"]
    return [w for w, i in zip(words, ids, strict=True) if len(i) == 1]


def make_text(model, n_tokens: int, seed: str = "") -> str:
    """A text that the model reads as exactly ``n_tokens`` tokens."""
    pool = single_token_words(model.tokenizer)
    text = " ".join(random.Random(f"graph-flow-{n_tokens}-{seed}").sample(pool, n_tokens - 2))
    got = model.run(text=text).n_tokens
    if got != n_tokens:
        raise RuntimeError(f"built a {n_tokens}-token text that has {got} tokens")
    return text


def graph_drawn(n_tokens: int, layer: int) -> str:
    return f"""() => {{
      const c = document.querySelector('.st-key-graph_fig');
      if (!c || c.dataset.stale === 'true' || !c.querySelector('.main-svg')) return false;
      const traces = c.querySelectorAll('g.scatterlayer g.trace');
      const title = (c.querySelector('.gtitle') || {{}}).textContent || '';
      return traces.length > 2 && traces[0].querySelectorAll('path.point').length === {n_tokens}
        && title.includes('layer {layer} ');
    }}"""


def choose_layer(page, layer: int, n_tokens: int, timeout_ms: int = 120_000) -> float:
    """Pick ``layer`` in the Layer select box; seconds until the head view shows it."""
    option = page.get_by_role("option", name=f"L{layer}", exact=True)
    for attempt in range(5):  # the list can close again when a rerun lands just after the click
        page.locator(".st-key-text_layer button[aria-label=Open]").click()
        try:
            option.wait_for(timeout=5_000)
            break
        except Exception:
            if attempt == 4:
                raise
            page.keyboard.press("Escape")
    t0 = time.perf_counter()
    option.click()
    page.wait_for_function(graph_drawn(n_tokens, layer), timeout=timeout_ms, polling="raf")
    return time.perf_counter() - t0


def select_heads(page, wanted: set[int], n_heads: int = 12) -> None:
    """Press exactly the ``wanted`` head buttons (each click reruns the page)."""
    for h in sorted(range(n_heads), key=lambda h: h not in wanted):  # press new ones first: never none selected
        button = page.locator(".st-key-graph_heads button", has_text=f"H{h}").first
        if (button.get_attribute("aria-pressed") == "true") != (h in wanted):
            button.click()
            wait_idle(page)
            time.sleep(0.3)


def bench_browser(model, sizes: list[int], reps: int) -> dict[tuple[int, str], list[float]]:
    from playwright.sync_api import sync_playwright

    out: dict[tuple[int, str], list[float]] = {}
    with streamlit_server() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for n in sizes:
            text = make_text(model, n)
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.goto(f"{url}/Text?text_view=Head+view", wait_until="domcontentloaded")
            page.wait_for_function(graph_drawn(16, 0), timeout=120_000)
            wait_idle(page)
            page.get_by_label("Text", exact=True).fill(text)
            page.get_by_role("button", name="Run").click()
            page.wait_for_function(graph_drawn(n, 0), timeout=120_000)
            wait_idle(page)
            for mode, heads in (("1 head", {0}), ("12 heads", set(range(12)))):
                select_heads(page, heads)
                times = []
                layer = 0
                for _ in range(reps):
                    layer = layer % 5 + 1  # 1..5, never the current one
                    times.append(choose_layer(page, layer, n))
                    wait_idle(page)
                out[(n, mode)] = times
                print(f"  head view {n:4d} tokens, {mode:8s}: " + ", ".join(f"{t:.2f}" for t in times) + " s",
                      flush=True)
            page.close()
        browser.close()
    return out


def bench_flow(model, sizes: list[int], reps: int, full_up_to: int) -> dict[int, dict[str, float | None]]:
    from attnviz import attention_flow
    from attnviz.analysis.flow import flow_rows

    out = {}
    for n in sizes:
        w = model.run(text=make_text(model, n, "flow")).weights
        row = []
        for _ in range(reps):
            t = time.perf_counter()
            flow_rows(w, [n // 2])
            row.append(time.perf_counter() - t)
        full = None
        if n <= full_up_to:
            times = []
            for _ in range(reps):
                t = time.perf_counter()
                attention_flow(w)
                times.append(time.perf_counter() - t)
            full = statistics.median(times)
        out[n] = {"row": statistics.median(row), "full": full}
        print(f"  flow {n:4d} tokens: one row {out[n]['row']:.3f} s"
              + (f", full matrix {full:.2f} s" if full is not None else ""), flush=True)
    return out


IMAGE_EXAMPLES = {"dinov2-small": "cat.jpg", "vit-fashion": "fashion-ankle-boot.png",
                  "shapes-vit": "shapes-triangle.png"}
"""The example picture each image model is timed on (in ``assets/examples``)."""


def bench_image_flow(reps: int) -> dict[str, tuple[int, float]]:
    """Seconds for one output token's flow ([CLS]) of each image model: {model: (tokens, median seconds)}."""
    import attnviz
    from attnviz.analysis.flow import flow_row

    out = {}
    for name, example in IMAGE_EXAMPLES.items():
        w = attnviz.load_model(name).run(image=ROOT / "assets" / "examples" / example).weights
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            flow_row(w, 0)
            times.append(time.perf_counter() - t)
        out[name] = (w.shape[-1], statistics.median(times))
        print(f"  flow {name}: {w.shape[0]} layers, {w.shape[-1]} tokens, one token {out[name][1]:.2f} s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 128, 512])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--flow-sizes", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    ap.add_argument("--flow-reps", type=int, default=3)
    ap.add_argument("--flow-full-up-to", type=int, default=64)
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--no-image-flow", action="store_true", help="skip one token's flow of each image model")
    args = ap.parse_args()

    import attnviz

    model = attnviz.load_model("minilm")
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    graph = {}
    if not args.no_browser:
        reason = chromium_missing_reason()
        if reason:
            print(f"skipping the browser: {reason}")
        else:
            graph = bench_browser(model, args.sizes, args.reps)
    flow = bench_flow(model, args.flow_sizes, args.flow_reps, args.flow_full_up_to)
    image_flow = {} if args.no_image_flow else bench_image_flow(args.flow_reps)
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")

    if graph:
        print(f"\n| tokens | heads | layer change → head view drawn (median of {args.reps}, s) | min–max (s) |")
        print("|---|---|---|---|")
        for (n, mode), times in graph.items():
            print(f"| {n} | {mode} | {statistics.median(times):.2f} | {min(times):.2f}–{max(times):.2f} |")
    print("\n| tokens | attention_flow, full matrix (s) | one output token (s) |")
    print("|---|---|---|")
    for n, r in flow.items():
        full = f"{r['full']:.2f}" if r["full"] is not None else f"– (≈{r['row'] * n:.0f} from rows)"
        print(f"| {n} | {full} | {r['row']:.3f} |")
    if image_flow:
        print("\n| image model | tokens | one token's flow (s) |")
        print("|---|---|---|")
        for name, (n, seconds) in image_flow.items():
            print(f"| {name} | {n} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
