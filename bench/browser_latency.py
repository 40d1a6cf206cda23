"""Issue 2's benchmark: attnviz's Text page against BertViz's ``model_view``, in headless Chromium, on this machine.

For 32/128/512-token inputs (MiniLM WordPiece tokens, [CLS] and [SEP] included; every input tokenizes to exactly
that length) it measures the following. ``--model smollm2-135m --sizes 2048 4096`` measures the same Run→visible on
long prompts of another text model (its targets: 10 s and 30 s; BertViz is not run for them).

attnviz (``streamlit run app.py``, the Text page; Streamlit's file watcher off, see ``SERVER_ENV``)
    Time from the click on Run to the last change of the page's main area: the last DOM mutation inside
    ``[data-testid="stMain"]`` (Plotly drawing included) or the last ``<img>`` load there, whichever is later.
    A run counts only once the page is idle (no status widget or spinner, no mutation for ``--quiet-ms``, every
    ``<img>`` complete, every Plotly chart drawn) and shows the new input (the focused head's axes carry the new
    text's tokens, or at 512 tokens the token list under its image does, and the all-heads image has a new URL).
    One warm-up run per size (the first one also loads the model), then ``--reps`` runs with distinct texts (so
    Streamlit's result cache cannot serve them: "cold"), then the same texts again ("cached": the results and
    grid image come from ``st.cache_data``).
    Bytes: everything the page received after the click, from Chrome DevTools Protocol ``Network`` events:
    websocket frames received (Streamlit's deltas; payload bytes) + HTTP responses (``encodedDataLength``,
    headers included; the grid image comes from ``/media/...``).

BertViz 1.4.1 ``model_view`` (the anchor)
    HTML size and generation time (``model_view(..., html_action="return")`` on the same attention), and render
    time: the HTML, with its three CDN scripts pointed at local npm copies, opened from a file in a fresh page;
    time from navigation start until ``#vis`` holds SVG and two animation frames have passed. Other network
    requests are blocked. Slow cases get fewer repetitions (shown as ``n=``); 512 tokens is tried once for render
    with ``--bertviz-timeout`` and reported as "–" when it does not finish.

Nothing is installed at run time. Without bertviz or the npm packages this prints how to get them
(``bash bench/setup.sh``) and still measures attnviz.

Usage::

    .venv/bin/python bench/browser_latency.py                  # everything (~12 min on 2 cores)
    .venv/bin/python bench/browser_latency.py --no-bertviz --sizes 128 512
    .venv/bin/python bench/browser_latency.py --model smollm2-135m --sizes 2048 4096 --reps 2 --no-cached
    .venv/bin/python bench/browser_latency.py --nice -10       # machine shared with other jobs (needs root)
    .venv/bin/python bench/browser_latency.py --no-bertviz --server-env OMP_NUM_THREADS=1 --text-page my_variant.py

Prints a Markdown table and writes the raw numbers to ``bench/results/browser_latency.json``.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    PAGE_COLLECT,
    PAGE_INIT,
    RESULTS,
    SERVER_ENV,
    VIEWPORT,
    NetLog,
    PageError,
    cpu_seconds,
    environment,
    fmt_bytes,
    fmt_s,
    make_text,
    page_state,
    server_log_tail,
    server_pid,
    single_token_words,
    summarize,
    wait_for_quiet_machine,
    wait_shown,
)
from tests.browser import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    chromium_missing_reason,
    streamlit_server,
)

VARIANT_APP = '''import streamlit as st

st.write("attnviz benchmark: a variant of the Text page is at /Text")
'''

NODE = ROOT / "bench" / ".node" / "node_modules"
TARGETS = {"latency_128_s": 0.5, "latency_512_s": 1.0, "speedup_128": 40.0, "payload_ratio_512": 100.0}
LONG_TARGETS = {2048: 10.0, 4096: 30.0}
"""Run→visible targets (s) for long prompts of a causal model (``--model smollm2-135m``)."""
WORDS = ("the model reads a long text and every head attends to earlier tokens in its own way while some heads "
         "look back at the first word others follow the previous one and a few find names dates or numbers").split()

# BertViz's CDN URLs (require.js in the HTML, d3 and jQuery in its require.config) -> local npm files.
CDN = {
    "https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.6/require.min.js": "requirejs/require.js",
    "https://cdnjs.cloudflare.com/ajax/libs/d3/5.7.0/d3.min": "d3/dist/d3.min",
    "https://cdnjs.cloudflare.com/ajax/libs/jquery/2.0.0/jquery.min": "jquery/dist/jquery.min",
}

SETUP_HINT = ("BertViz is not measured: {what}. Install the benchmark-only dependencies with\n"
              "    bash bench/setup.sh        (pip: requirements-bench.txt into .venv; npm: bench/.node/)\n")

# BertViz page: done = #vis holds SVG and two animation frames have passed (times are ms since navigation start).
BERTVIZ_INIT = r"""
(() => {
  const check = () => {
    if (window.__bvSvg !== undefined) return true;
    const vis = document.querySelector('#vis');
    if (!vis || !vis.querySelector('svg')) return false;
    window.__bvSvg = performance.now();
    requestAnimationFrame(() => requestAnimationFrame(() => { window.__bvDone = performance.now(); }));
    return true;
  };
  const obs = new MutationObserver(() => { if (check()) obs.disconnect(); });
  obs.observe(document, {childList: true, subtree: true});
})();
"""


# ---------------------------------------------------------------------------------------------------------------
# Inputs (the word pool and texts: bench/common.py)
# ---------------------------------------------------------------------------------------------------------------
def fitted_text(model, n: int, label: str) -> str:
    """A text of about ``n`` tokens for any tokenizer: words in an order drawn from ``label``, cut to ``n`` ids and
    decoded (checked by the caller)."""
    rng = random.Random(f"attnviz-bench-{n}-{label}")
    words = [rng.choice(WORDS) for _ in range(2 * n)]
    ids = model.tokenizer(" ".join(words), add_special_tokens=False)["input_ids"]
    specials = len(model.tokenizer("a")["input_ids"]) - len(model.tokenizer("a", add_special_tokens=False)["input_ids"])
    return model.tokenizer.decode(ids[:n - specials])


def build_inputs(model, sizes: list[int], reps: int) -> dict[int, list[dict]]:
    """Per size: the warm-up text then ``reps`` texts; each checked to tokenize to exactly that many tokens
    (MiniLM: words that are one WordPiece token each; other models: :func:`fitted_text`)."""
    pool = single_token_words(model.tokenizer) if model.name == "minilm" else None
    out: dict[int, list[dict]] = {}
    for n in sizes:
        items = []
        for label in ["warm-up", *(f"rep{i}" for i in range(reps))]:
            text = make_text(pool, n, label) if pool else fitted_text(model, n, label)
            enc, truncated, _ = model.encode(text)
            got = int(enc["input_ids"].shape[-1])
            if got != n or truncated:
                raise RuntimeError(f"built a {n}-token input that tokenizes to {got} tokens (truncated={truncated})")
            items.append({"label": label, "text": text})
        out[n] = items
    return out


# ---------------------------------------------------------------------------------------------------------------
# attnviz (instrumentation, page state and byte counting: bench/common.py)
# ---------------------------------------------------------------------------------------------------------------
def measure_run(page, net: NetLog, text: str, tokens: list[str], quiet_ms: int, timeout_s: float,
                pid: int | None = None) -> dict:
    """Type ``text``, press Run, wait until it is shown; the timings (s) and bytes of that run."""
    before = page_state(page)
    page.get_by_label("Text", exact=True).fill(text)
    wait_shown(page, None, None, 300, timeout_s)  # the form's own reaction to typing settles first
    page.evaluate("() => window.__bench.arm()")
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)))")
    net.reset()
    cpu0 = cpu_seconds(pid)
    page.get_by_role("button", name="Run").click()
    wait_shown(page, tokens, before["gridSrc"], quiet_ms, timeout_s)
    cpu1 = cpu_seconds(pid)
    c = page.evaluate(PAGE_COLLECT)
    end_ms = max(c["lastMutation"], c["lastImgLoad"] or 0.0)
    ms = 1e-3
    media = [r for r in c["resources"] if "/media/" in r["name"]]
    return {
        "latency_s": end_ms * ms,
        "last_mutation_s": c["lastMutation"] * ms,
        "last_img_load_s": c["lastImgLoad"] * ms if c["lastImgLoad"] is not None else None,
        "last_change_by_area_s": {k: v * ms for k, v in c["lastByKind"].items()},
        "ws_first_s": c["wsFirst"] * ms if c["wsFirst"] is not None else None,
        "ws_last_s": c["wsLast"] * ms if c["wsLast"] is not None else None,
        "media_end_s": max((r["end"] for r in media), default=0.0) * ms if media else None,
        "server_cpu_s": None if cpu0 is None or cpu1 is None else cpu1 - cpu0,
        "longtask_s": c["longtaskMs"] * ms, "longtasks": c["longtasks"], "mutation_records": c["mutations"],
        "bytes": net.ws_bytes + net.http_bytes, "ws_bytes": net.ws_bytes, "ws_frames": net.ws_frames,
        "http_bytes": net.http_bytes, "http": net.http,
        "page_ws_bytes": c["wsBytes"], "page_ws_frames": c["wsFrames"], "largest_ws_frame": c["wsLargest"],
        "media": [{"url": r["name"].rsplit("/", 1)[-1], "transfer": r["transferSize"],
                   "body": r["encodedBodySize"], "end_s": r["end"] * ms} for r in media],
    }


@contextlib.contextmanager
def app_server(text_page: Path | None, env: dict[str, str]) -> Iterator[str]:
    """The real app (``tests.browser.streamlit_server``), or, with ``text_page``, a scratch app whose only page
    is that variant of the Text page, served the same way (same config, same flags)."""
    log_path = RESULTS / "streamlit.log"
    if text_page is None:
        with streamlit_server(log_path, extra_env=env) as url:
            yield url
        return
    with tempfile.TemporaryDirectory(prefix="attnviz-bench-app-") as tmp:
        app = Path(tmp)
        (app / "pages").mkdir()
        (app / "app.py").write_text(VARIANT_APP)
        shutil.copy(text_page, app / "pages" / "1_Text.py")
        with streamlit_server(log_path, extra_env=env, app=app / "app.py") as url:
            yield url


def bench_attnviz(inputs: dict[int, list[dict]], tokens: dict[str, list[str]], args) -> dict:
    from playwright.sync_api import sync_playwright

    RESULTS.mkdir(parents=True, exist_ok=True)
    out: dict = {"sizes": {}}
    with app_server(args.text_page, args.server_env) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        ctx = browser.new_context(viewport=VIEWPORT)
        ctx.add_init_script(PAGE_INIT)
        page = ctx.new_page()
        net = NetLog(ctx.new_cdp_session(page))
        pid = server_pid(url)
        t0 = time.perf_counter()
        page.goto(f"{url}/Text" + ("" if args.model == "minilm" else f"?text_model={args.model}"),
                  wait_until="domcontentloaded")
        page.get_by_role("heading", name="Text attention").wait_for(timeout=120_000)
        wait_shown(page, None, None, args.quiet_ms, 300)
        out["first_load_s"] = time.perf_counter() - t0 - args.quiet_ms / 1000
        out["ws_extensions"] = net.ws_extensions
        print(f"attnviz: Text page loaded (first run incl. model load) in ~{out['first_load_s']:.1f} s", flush=True)
        for n, items in inputs.items():
            runs: dict[str, list[dict]] = {"warm-up": [], "cold": [], "cached": []}
            plan = [("warm-up", items[0])] + [("cold", it) for it in items[1:]]
            if args.cached:
                plan += [("cached", it) for it in items[1:]]
            for phase, it in plan:
                try:
                    r = measure_run(page, net, it["text"], tokens[it["text"]], args.quiet_ms, args.timeout, pid)
                    r["retried"] = None
                except PageError as e:  # e.g. a module half-way through an edit; a real bug fails again
                    print(f"  {n:4d} tokens {phase} {it['label']}: {e}\n  (server log: {server_log_tail()})\n"
                          "  retrying once", flush=True)
                    r = measure_run(page, net, it["text"], tokens[it["text"]], args.quiet_ms, args.timeout, pid)
                    r["retried"] = str(e)[:500]
                r["label"] = it["label"]
                r["loadavg"] = os.getloadavg()[0]
                runs[phase].append(r)
                print(f"  {n:4d} tokens {phase:8s} {it['label']:8s} {r['latency_s']:6.3f} s  "
                      f"{r['bytes'] / 1e6:6.2f} MB (ws {r['ws_bytes'] / 1e6:.2f} MB in {r['ws_frames']} frames, "
                      f"http {r['http_bytes'] / 1e3:.0f} KB)  script done {fmt_s(r['ws_last_s'])}  "
                      f"server CPU {fmt_s(r['server_cpu_s'])}  browser long tasks {r['longtask_s']:.3f} s  "
                      f"load {r['loadavg']:.1f}", flush=True)
            out["sizes"][str(n)] = {"runs": runs, "cold": summarize(runs["cold"]),
                                    "cached": summarize(runs["cached"]) if runs["cached"] else None}
        page.screenshot(path=str(RESULTS / "text_page_last_run.png"), full_page=True)
        browser.close()
    return out


# ---------------------------------------------------------------------------------------------------------------
# BertViz
# ---------------------------------------------------------------------------------------------------------------
def bertviz_missing() -> str | None:
    if importlib.util.find_spec("bertviz") is None or importlib.util.find_spec("IPython") is None:
        return "the bertviz (1.4.1) or ipython package is not installed in this Python"
    missing = [rel for rel in CDN.values() if not (NODE / (rel if rel.endswith(".js") else rel + ".js")).is_file()]
    if missing:
        return f"npm files missing under {NODE}: {', '.join(missing)}"
    return None


def bertviz_html(weights, tokens: list[str]) -> str:
    import torch
    from bertviz import model_view

    attention = [torch.from_numpy(weights[layer][None]) for layer in range(weights.shape[0])]  # (1, head, q, k)
    return model_view(attention, list(tokens), html_action="return").data


def offline_page(html: str) -> str:
    for cdn, rel in CDN.items():
        if html.count(cdn) != 1:
            raise RuntimeError(f"BertViz HTML does not reference {cdn} exactly once: another BertViz version?")
        html = html.replace(cdn, (NODE / rel).as_uri())
    head = '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>bertviz</title></head><body>\n'
    return f"{head}{html}\n</body></html>\n"


def adaptive_reps(first_s: float, wanted: int) -> int:
    """Fewer repetitions for slow cases: 5 when under 5 s, 3 under 60 s, else 1."""
    return min(wanted, 5 if first_s < 5 else 3 if first_s < 60 else 1)


def render_once(browser, path: Path, timeout_s: float) -> float:
    """Open the HTML file in a fresh page; seconds from navigation start until rendered."""
    ctx = browser.new_context(viewport=VIEWPORT)
    try:
        ctx.route(re.compile(r"^https?://"), lambda route: route.abort())
        ctx.add_init_script(BERTVIZ_INIT)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        deadline = time.monotonic() + timeout_s
        page.goto(path.as_uri(), wait_until="commit", timeout=timeout_s * 1000)
        while time.monotonic() < deadline:
            done = page.evaluate("() => window.__bvDone ?? null")
            if done is not None:
                return done / 1000
            if errors:
                raise RuntimeError(f"BertViz page error: {errors[0]}")
            time.sleep(0.1)
        raise TimeoutError(f"not rendered within {timeout_s:.0f} s")
    finally:
        ctx.close()


def bench_bertviz(results: dict, sizes: list[int], args) -> dict:
    """HTML size, generation and render time of BertViz model_view on the same attention."""
    from playwright.sync_api import sync_playwright

    out: dict = {}
    with sync_playwright() as pw, tempfile.TemporaryDirectory(prefix="attnviz-bertviz-") as tmp:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for n in sizes:
            weights, tokens = results[n]
            gen: list[float] = []
            html = ""
            while len(gen) < (adaptive_reps(gen[0], args.bertviz_reps) if gen else 1):
                html = ""
                t = time.perf_counter()
                html = bertviz_html(weights, tokens)
                gen.append(time.perf_counter() - t)
            size = len(html.encode("utf-8"))  # what model_view returns (the page adds ~0.3 KB around it)
            page_html = offline_page(html)
            del html
            rec: dict = {"html_bytes": size, "generate_s": gen, "generate_median_s": statistics.median(gen),
                         "render_s": [], "render_median_s": None, "render_error": None}
            print(f"  BertViz {n:4d} tokens: HTML {size / 1e6:.1f} MB, generated in "
                  f"{rec['generate_median_s']:.2f} s (median of {len(gen)})", flush=True)
            if n > args.bertviz_max_render:
                rec["render_error"] = f"not attempted (> --bertviz-max-render {args.bertviz_max_render})"
                out[str(n)] = rec
                continue
            path = Path(tmp) / f"model_view_{n}.html"
            path.write_text(page_html, encoding="utf-8")
            del page_html
            timeout = args.bertviz_timeout
            try:
                while len(rec["render_s"]) < (adaptive_reps(rec["render_s"][0], args.bertviz_reps)
                                              if rec["render_s"] else 1):
                    rec["render_s"].append(render_once(browser, path, timeout))
                rec["render_median_s"] = statistics.median(rec["render_s"])
                print(f"  BertViz {n:4d} tokens: rendered in {rec['render_median_s']:.2f} s "
                      f"(median of {len(rec['render_s'])}: {', '.join(f'{s:.2f}' for s in rec['render_s'])})",
                      flush=True)
            except Exception as e:  # timeout, renderer crash (out of memory), page error
                rec["render_error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
                print(f"  BertViz {n:4d} tokens: render did not finish: {rec['render_error']}", flush=True)
                if not browser.is_connected():
                    browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            finally:
                path.unlink(missing_ok=True)
            out[str(n)] = rec
        browser.close()
    return out


# ---------------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------------
def report(data: dict) -> str:
    att, bv = data["attnviz"], data.get("bertviz") or {}
    lines = ["| tokens | attnviz Run→all heads visible (median, s) | attnviz bytes | BertViz model_view render (s) "
             "| BertViz HTML | speed-up | payload ratio |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for n, rec in att["sizes"].items():
        cold = rec["cold"]
        b = bv.get(n)
        render = b and b["render_median_s"]
        render_txt = (f"{render:.2f} (n={len(b['render_s'])})" if render is not None
                      else "–" if b else "not measured")
        html = b["html_bytes"] if b else None
        speedup = f"{render / cold['latency_s']:.0f}×" if render else "–"
        ratio = f"1/{html / cold['bytes']:.0f}" if html else "–"
        lines.append(f"| {n} | {cold['latency_s']:.3f} (n={cold['n']}; {cold['latency_min_s']:.3f}–"
                     f"{cold['latency_max_s']:.3f}) | {fmt_bytes(cold['bytes'])} | {render_txt} | "
                     f"{fmt_bytes(html)} | {speedup} | {ratio} |")
    lines += ["", "Where attnviz's time goes (medians; seconds after the click on Run):", "",
              "| tokens | phase | Run→visible | first ws msg | last ws msg (script done) | server CPU "
              "| grid image loaded | last Plotly change | browser long tasks | ws bytes | http bytes | load avg |",
              "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n, rec in att["sizes"].items():
        for phase in ("cold", "cached"):
            s = rec.get(phase)
            if not s:
                continue
            lines.append(f"| {n} | {phase} | {s['latency_s']:.3f} | {fmt_s(s['ws_first_s'])} | {fmt_s(s['ws_last_s'])} "
                         f"| {fmt_s(s['server_cpu_s'])} | {fmt_s(s['last_img_load_s'])} "
                         f"| {fmt_s(s['last_plotly_change_s'])} | {fmt_s(s['longtask_s'])} "
                         f"| {fmt_bytes(s['ws_bytes'])} | {fmt_bytes(s['http_bytes'])} | {s['loadavg']:.1f} |")
    if bv:
        lines += ["", "BertViz model_view HTML generation (Python, from the attention arrays): "
                  + "; ".join(f"{n} tokens {b['generate_median_s']:.2f} s (n={len(b['generate_s'])})"
                              for n, b in bv.items())]
        errs = [f"{n} tokens: {b['render_error']}" for n, b in bv.items() if b["render_error"]]
        if errs:
            lines.append("BertViz render not measured for " + "; ".join(errs))
    return "\n".join(lines)


def check_targets(data: dict) -> list[str]:
    att, bv = data["attnviz"]["sizes"], data.get("bertviz") or {}
    out = []

    def line(ok: bool | None, what: str) -> None:
        out.append(f"[{'n/a' if ok is None else 'PASS' if ok else 'MISS'}] {what}")

    lat = {n: att[n]["cold"]["latency_s"] for n in att}
    if data["args"].get("model", "minilm") != "minilm":
        for n, target in LONG_TARGETS.items():
            if str(n) in lat:
                line(lat[str(n)] <= target, f"Run→visible at {n} tokens {lat[str(n)]:.1f} s ≤ {target:.0f} s")
        return out
    if "128" in lat:
        line(lat["128"] <= TARGETS["latency_128_s"], f"Run→visible at 128 tokens {lat['128']:.3f} s ≤ 0.5 s")
    if "512" in lat:
        line(lat["512"] <= TARGETS["latency_512_s"], f"Run→visible at 512 tokens {lat['512']:.3f} s ≤ 1.0 s")
    r128 = bv.get("128", {}).get("render_median_s")
    if "128" in lat:
        sp = r128 / lat["128"] if r128 else None
        line(None if sp is None else sp >= TARGETS["speedup_128"],
             f"speed-up over BertViz at 128 tokens {'–' if sp is None else f'{sp:.0f}×'} ≥ 40×")
    h512 = bv.get("512", {}).get("html_bytes")
    if "512" in att:
        ratio = h512 / att["512"]["cold"]["bytes"] if h512 else None
        line(None if ratio is None else ratio >= TARGETS["payload_ratio_512"],
             f"payload at 512 tokens {'–' if ratio is None else f'1/{ratio:.0f}'} of BertViz's HTML ≤ 1/100")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="minilm", help="the Text page's model (BertViz is run for minilm only)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 128, 512], help="input lengths in tokens")
    ap.add_argument("--reps", type=int, default=5, help="measured attnviz runs per size (after one warm-up)")
    ap.add_argument("--no-cached", dest="cached", action="store_false",
                    help="skip re-running the same texts (served by Streamlit's cache)")
    ap.add_argument("--quiet-ms", type=int, default=1500, help="no mutation for this long = the page is idle")
    ap.add_argument("--timeout", type=float, default=180, help="seconds allowed for one attnviz run")
    ap.add_argument("--no-bertviz", dest="bertviz", action="store_false", help="measure attnviz only")
    ap.add_argument("--bertviz-reps", type=int, default=5, help="at most this many (fewer for slow cases)")
    ap.add_argument("--bertviz-max-render", type=int, default=512, help="largest size BertViz render is tried at")
    ap.add_argument("--bertviz-timeout", type=float, default=180, help="seconds allowed for one BertViz render")
    ap.add_argument("--text-page", type=Path, default=None,
                    help="measure this variant of pages/1_Text.py instead (served as the only page of a scratch app)")
    ap.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                    help="environment for the Streamlit server, e.g. OMP_NUM_THREADS=1 (repeatable); "
                         f"defaults: {SERVER_ENV}")
    ap.add_argument("--nice", type=int, default=0,
                    help="run this script, the server and Chromium at this niceness (negative needs root): "
                         "on a machine shared with other jobs, -10 approximates a dedicated machine")
    ap.add_argument("--max-load", type=float, default=None,
                    help="first wait (up to 30 min) until the 1-minute load average is below this")
    ap.add_argument("--out", type=Path, default=RESULTS / "browser_latency.json")
    args = ap.parse_args(argv)
    args.server_env = {**SERVER_ENV, **dict(kv.split("=", 1) for kv in args.server_env)}
    if args.nice:
        os.nice(args.nice)  # inherited by the server and the browser started below
    wait_for_quiet_machine(args.max_load)

    reason = chromium_missing_reason()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    args.bertviz = args.bertviz and args.model == "minilm"
    bv_missing = bertviz_missing() if args.bertviz else "--no-bertviz"
    if args.bertviz and bv_missing:
        print(SETUP_HINT.format(what=bv_missing), file=sys.stderr)

    import attnviz

    model = attnviz.load_model(args.model)
    sizes = sorted(set(args.sizes))
    inputs = build_inputs(model, sizes, args.reps)
    tokens, attention = {}, {}
    for n, items in inputs.items():
        for it in items:
            if args.bertviz and it["label"] == "rep0":
                r = model.run(text=it["text"])
                attention[n] = (r.weights, list(r.tokens))
            enc, _, _ = model.encode(it["text"])
            tokens[it["text"]] = model.labels(enc["input_ids"][0].tolist())
    data: dict = {"environment": environment(), "args": {k: str(v) for k, v in vars(args).items()},
                  "inputs": {str(n): [it["text"][:80] + "…" for it in items] for n, items in inputs.items()}}
    print(f"inputs: {', '.join(f'{n} tokens' for n in sizes)}; load average {data['environment']['loadavg_start']}",
          flush=True)
    data["attnviz"] = bench_attnviz(inputs, tokens, args)
    data["bertviz"] = None
    if args.bertviz and not bv_missing:
        data["bertviz"] = bench_bertviz(attention, sizes, args)
    data["environment"]["loadavg_end"] = os.getloadavg()
    data["targets"] = check_targets(data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1))

    print()
    print(report(data))
    print()
    print("\n".join(data["targets"]))
    if args.bertviz and bv_missing:
        print("\n" + SETUP_HINT.format(what=bv_missing))
    env = data["environment"]
    print(f"\nload average {', '.join(f'{x:.1f}' for x in env['loadavg_start'])} → "
          f"{', '.join(f'{x:.1f}' for x in env['loadavg_end'])} (1, 5, 15 min; other processes share the "
          f"{os.cpu_count()} cores); niceness {env['niceness']}; server env {args.server_env or '-'}; "
          f"Text page {args.text_page or 'pages/1_Text.py'}; raw numbers in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
