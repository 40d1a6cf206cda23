"""Several people press Run on a 512-token text at the same moment: the load benchmark's slowest text runs, alone.

In every class run of ``bench/load.py`` the slowest text runs were one moment: three sessions pressing Run within
0.11 s. This script repeats that moment: ``--sessions`` browser contexts on the Text page of one server (the same
server, probe and instrumentation as ``load.py``), each fills its own 512-token text, then all click Run together;
``--rounds`` times, after one session doing the same alone (the reference). Per action: the latency (click -> last
change of the page), the last websocket message and the browser's long tasks, and the server's own time per script
run and the sends (event-loop flushes) that carried its messages (``bench/server_probe``; the browser renders the page
once per send).

Usage::

    .venv/bin/python bench/collide.py                       # 3 at once x 5 rounds, after 1 x 5 (~2 min)
    .venv/bin/python bench/collide.py --sessions 3 --rounds 8 --client-nice 19
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import PAGE_INIT, RESULTS, SERVER_ENV, VIEWPORT, percentile, shows_tokens  # noqa: E402
from bench.load import (  # noqa: E402
    LOG,
    RUNLOG,
    SERVER_PROBE,
    TOKENS,
    Session,
    build_inputs,
    launch,
)
from tests.browser import chromium_missing_reason, streamlit_server  # noqa: E402


async def prepare(s: Session, rep: int) -> tuple:
    """Type this session's text and wait until the form is idle; the click and the check for :meth:`checked`."""
    key = (s.sid, rep)
    tokens = s.inputs.tokens[key]
    old = (await s.state())["gridSrc"]
    await s.page.get_by_label("Text", exact=True).fill(s.inputs.texts[key])
    await s.settle(s.idle(None, True))

    def shows(st: dict) -> bool:
        return (shows_tokens(st, tokens) and st["gridSrc"] != old
                and any(f"{TOKENS} tokens" in c for c in st["captions"]))

    async def click() -> None:
        await s.page.get_by_role("button", name="Run").click()

    return key, click, shows


async def together(sessions: list[Session], rep: int) -> list[dict]:
    """All sessions type, then all press Run at once; one record each."""
    prepared = await asyncio.gather(*(prepare(s, rep) for s in sessions))
    t = time.time()
    out = await asyncio.gather(*(s.checked(k, c, sh, True) for s, (k, c, sh) in zip(sessions, prepared, strict=True)))
    return [{"session": s.sid, "rep": rep, "t": t, **r} for s, r in zip(sessions, out, strict=True)]


def server_runs(t0: float, t1: float) -> list[dict]:
    """The server's Text script runs between wall times ``t0`` and ``t1`` (``bench/server_probe``): its own
    seconds, and the sends (flushes) and messages that carried each run to its browser."""
    try:
        lines = RUNLOG.read_text().splitlines()
    except OSError:
        return []
    runs = [json.loads(line) for line in lines]
    return [r for r in runs if t0 <= r["t"] <= t1 and r["page"] == "Text"]


def stats(values: list[float]) -> str:
    if not values:
        return "–"
    return f"p50 {percentile(values, 50):.2f} s, p95 {percentile(values, 95):.2f} s, max {max(values):.2f} s"


def counts(values: list[int]) -> str:
    if not values:
        return "–"
    return f"p50 {percentile(values, 50):.0f}, max {max(values)}"


async def bench(args, inputs) -> dict:
    from playwright.async_api import async_playwright

    RUNLOG.unlink(missing_ok=True)
    env = {**SERVER_ENV, "ATTNVIZ_BENCH_RUNLOG": str(RUNLOG), "PYTHONPATH": str(SERVER_PROBE)}
    out: dict = {}
    with streamlit_server(LOG, extra_env=env) as url:
        if args.client_nice:
            os.nice(args.client_nice)
        async with async_playwright() as pw:
            browser = await launch(pw, args.client_nice)
            sessions = []
            for sid in range(args.sessions + 1):
                ctx = await browser.new_context(viewport=VIEWPORT)
                await ctx.add_init_script(PAGE_INIT)
                s = Session(sid, ctx, url, inputs, args)
                await s.open("Text")
                sessions.append(s)
            await together(sessions[:1], 0)  # warm-up: loads the model, first 512-token run
            for name, group in (("alone", sessions[:1]), ("together", sessions[1:])):
                t0, recs = time.time(), []
                for rep in range(1, args.rounds + 1):
                    recs += await together(group, rep)
                    await asyncio.sleep(args.pause)
                runs = server_runs(t0, time.time())
                out[name] = {"records": recs, "server_s": [r["seconds"] for r in runs],
                             "sends": [r["sends"] for r in runs], "messages": [r["messages"] for r in runs]}
            await browser.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=3, help="sessions pressing Run at once")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--pause", type=float, default=2.0, help="seconds between rounds")
    ap.add_argument("--client-nice", type=int, default=19, help="the browsers' niceness (as load.py)")
    ap.add_argument("--quiet-ms", type=int, default=1500)
    ap.add_argument("--action-timeout", type=float, default=120)
    ap.add_argument("--out", type=Path, default=RESULTS / "collide.json")
    args = ap.parse_args(argv)
    reason = chromium_missing_reason()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="attnviz-bench-collide-") as tmp:
        inputs = build_inputs(args.sessions + 1, args.rounds + 1, Path(tmp))
        data = asyncio.run(bench(args, inputs))
    args.out.write_text(json.dumps(data, indent=1))
    for name, d in data.items():
        recs = d["records"]
        print(f"{name} ({len(recs)} runs): latency {stats([r['latency_s'] for r in recs])}; "
              f"last ws message {stats([r['ws_last_s'] for r in recs if r['ws_last_s'] is not None])}; "
              f"long tasks {stats([r['longtask_s'] for r in recs])}; server {stats(d['server_s'])}; "
              f"sends per run {counts(d['sends'])} carrying {counts(d['messages'])} messages")
    print(f"raw numbers in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
