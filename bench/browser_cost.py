"""The browser's CPU per action, with the server's messages arriving together or one by one.

Each element a page script writes (a heading, a table, a chart, a column) is one websocket message, and Streamlit's
page re-renders for each message that arrives on its own. A script run alone sends its messages within a few
milliseconds; on a loaded server (``bench/load.py``: 8 sessions on 2 cores) they trickle in, and the browser does
much more work for the same page. ``--delay-ms`` emulates that: the server (``bench/server_probe``) holds each
element back that long before handing it over, so every message arrives on its own.

One headless Chromium, one session, on a fresh ``streamlit run app.py`` per delay. Each round, from the Text page:
visit Mechanisms, change its heads (1 <-> 3), visit Text, run a 512-token text of its own, visit Image, upload a picture
of its own, back to Text (not counted). For each action:

* CPU: all Chromium processes (renderer, browser, GPU/compositor, network), from the click until 1.5 s after the
  page is idle;
* main thread: the renderer's busy time (CDP ``Performance.getMetrics`` ``TaskDuration``), of which JavaScript
  (``ScriptDuration``);
* messages: websocket frames the page received.

Usage::

    .venv/bin/python bench/browser_cost.py                  # delays 0 and 15 ms, 6 rounds each (~6 min)
    .venv/bin/python bench/browser_cost.py --delays 0 --rounds 3

Prints one table per delay: the median of each figure.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    PAGE_INIT,
    UPLOAD,
    VIEWPORT,
    cpu_seconds,
    make_text,
    photo_variant,
    process_tree,
    single_token_words,
)
from tests.browser import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    chromium_missing_reason,
    streamlit_server,
    wait_idle,
)

SERVER_PROBE = ROOT / "bench" / "server_probe"
SETTLE_S = 1.5
"""Seconds after the page is idle still counted (late renders, image decoding, chart drawing)."""
TITLES = {"Text": "Text attention", "Image": "Image attention", "Mechanisms": "Mechanisms"}
METRICS = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")
ACTIONS = ("visit Mechanisms", "heads change", "visit Text", "text run", "visit Image", "image upload")
TOKENS = 512


def chromium_cpu() -> float:
    """CPU seconds of every Chromium process this script started."""
    total = 0.0
    for pid in process_tree(os.getpid()):
        try:
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
        except OSError:
            continue
        if b"chrom" in argv0:
            total += cpu_seconds(pid) or 0.0
    return total


class Probe:
    """One page with its CDP session: what an action cost the browser."""

    def __init__(self, page) -> None:
        self.page = page
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("Performance.enable")

    def metrics(self) -> dict[str, float]:
        got = {m["name"]: m["value"] for m in self.cdp.send("Performance.getMetrics")["metrics"]}
        return {k: got.get(k, 0.0) for k in METRICS}

    def measure(self, act, done) -> dict[str, float]:
        """Run ``act()``, wait until the page is idle and ``done()``, then :data:`SETTLE_S`; the action's costs."""
        self.page.evaluate("() => { window.__bench.arm(); window.__bench.click = performance.now(); }")
        cpu0, m0 = chromium_cpu(), self.metrics()
        act()
        time.sleep(0.3)
        wait_idle(self.page)
        done()
        time.sleep(SETTLE_S)
        m1 = self.metrics()
        return {"cpu_s": chromium_cpu() - cpu0, "task_s": m1["TaskDuration"] - m0["TaskDuration"],
                "script_s": m1["ScriptDuration"] - m0["ScriptDuration"],
                "layout_s": m1["LayoutDuration"] - m0["LayoutDuration"],
                "style_s": m1["RecalcStyleDuration"] - m0["RecalcStyleDuration"],
                "messages": self.page.evaluate("() => window.__bench.ws.length")}

    def visit(self, name: str) -> dict[str, float]:
        link = self.page.locator('[data-testid="stSidebarNavLink"]').filter(has_text=re.compile(f"^{name}$"))
        heading = self.page.locator('[data-testid="stMain"] h1').filter(has_text=TITLES[name])
        return self.measure(link.click, lambda: heading.wait_for(timeout=120_000))

    def change_heads(self) -> dict[str, float]:
        box = self.page.locator('[data-testid="stNumberInput"]', has_text="Heads").locator("input")
        heads = 1 if box.input_value() == "3" else 3
        box.fill(str(heads))
        tab = self.page.get_by_role("tab", name=f"Head {heads - 1}", exact=True)
        return self.measure(lambda: box.press("Enter"), lambda: tab.wait_for(timeout=60_000))

    def run_text(self, text: str) -> dict[str, float]:
        """Type ``text`` (not counted) and press Run; done when the caption counts :data:`TOKENS` tokens."""
        self.page.get_by_label("Text", exact=True).fill(text)
        time.sleep(0.3)
        wait_idle(self.page)
        caption = self.page.get_by_text(f"· {TOKENS} tokens")
        return self.measure(lambda: self.page.get_by_role("button", name="Run").click(),
                            lambda: caption.wait_for(timeout=120_000))

    def upload(self, path: Path) -> dict[str, float]:
        """Upload the picture at ``path``; done when a caption names it."""
        caption = self.page.get_by_text(path.name).first
        return self.measure(lambda: self.page.locator(UPLOAD).set_input_files(str(path)),
                            lambda: caption.wait_for(timeout=120_000))


def inputs(rounds: int, folder: Path) -> tuple[list[str], list[Path]]:
    """A 512-token text and a picture for each round, all different (nothing comes from a cache)."""
    import attnviz

    pool = single_token_words(attnviz.load_model("minilm").tokenizer)
    texts = [make_text(pool, TOKENS, f"browser-cost-{i}") for i in range(rounds)]
    pictures = [folder / f"browser-cost-{i}.jpg" for i in range(rounds)]
    for i, path in enumerate(pictures):
        photo_variant(i, path)
    return texts, pictures


def run(delay_ms: float, rounds: int) -> dict[str, list[dict[str, float]]]:
    """``rounds`` rounds of :data:`ACTIONS` against a server that holds each element back ``delay_ms``."""
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="attnviz-browser-cost-"))
    texts, pictures = inputs(rounds, folder)
    env = {"PYTHONPATH": str(SERVER_PROBE), "ATTNVIZ_BENCH_DELAY_MS": str(delay_ms)}
    out: dict[str, list[dict[str, float]]] = {a: [] for a in ACTIONS}
    with streamlit_server(extra_env=env) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        page.add_init_script(PAGE_INIT)
        probe = Probe(page)
        for name in ("Image", "Mechanisms", "Text"):  # load the models and every page's scripts once
            page.goto(f"{url}/{name}")
            page.locator('[data-testid="stMain"] h1').filter(has_text=TITLES[name]).wait_for(timeout=300_000)
            time.sleep(0.5)
            wait_idle(page, 300_000)
        time.sleep(2)
        for text, picture in zip(texts, pictures, strict=True):
            out["visit Mechanisms"].append(probe.visit("Mechanisms"))
            out["heads change"].append(probe.change_heads())
            out["visit Text"].append(probe.visit("Text"))
            out["text run"].append(probe.run_text(text))
            out["visit Image"].append(probe.visit("Image"))
            out["image upload"].append(probe.upload(picture))
            probe.visit("Text")
        browser.close()
    shutil.rmtree(folder, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--delays", type=float, nargs="+", default=[0.0, 15.0], metavar="MS",
                    help="per-element delays of the server, one run each (default 0 15)")
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args(argv)
    reason = chromium_missing_reason()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    for delay in args.delays:
        res = run(delay, args.rounds)
        print(f"\nServer delay {delay:g} ms per element, median of {args.rounds}:\n")
        print("| action | Chromium CPU (s) | renderer main thread (s) | of it JavaScript (s) | layout (s) "
              "| style (s) | messages |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for action, rows in res.items():
            med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
            print(f"| {action} | {med['cpu_s']:.2f} | {med['task_s']:.2f} | {med['script_s']:.2f} | "
                  f"{med['layout_s']:.2f} | {med['style_s']:.2f} | {med['messages']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
