"""Issue 6's load benchmark: N people at once on one ``streamlit run app.py`` server, in headless Chromium.

One server on loopback (file watcher off, as the other benchmarks), one browser context (= one Streamlit session)
per simulated person, all driven from one asyncio loop: by default all contexts in one Chromium, with
``--browsers own`` each in a Chromium of its own (its own browser process, compositor and network service, as each
person's own browser; one shared Chromium serves all eight pages' frames and sockets from single threads).
Each session repeats ``--reps`` times:

text run           Text page: its own 512-token text (MiniLM WordPiece tokens incl. [CLS]/[SEP]), click Run. Done
                   when the focused head lists that text's 512 tokens (under its image: above 256 tokens the matrix
                   is an image, not a chart), the caption says 512 tokens and the all-heads image is new.
page switch        sidebar link to the Image page (and, below, to Mechanisms and back to Text): done when the new
                   page's title and images are there (the Mechanisms page's heatmaps are SVG images), with the
                   focused head's tokens (Text) or the patch picker chart (Image).
image upload       Image page: its own picture (a distinct crop of an example photo, named after the session and
                   repetition). Done when the caption names that file and its size and all five overlays are loaded.
mechanisms change  Mechanisms page: set the "Heads" number input (1 <-> 3). Done when one tab per head is shown.

Latency: from the action (click, Enter, ``set_input_files``) to the last change of the main area (the last DOM
mutation or ``<img>`` load in ``[data-testid="stMain"]``), counted once the page is idle (Streamlit's run state
done, no spinner, no mutation for ``--quiet-ms``) and shows that session's content: instrumentation and rule from
``bench/common.py`` (as ``browser_latency.py``). Errors: a Python exception on the page (``stException``), a timeout
(``--action-timeout``), wrong content (the page settled on something else) or cross-talk (the page shows another
session's text or picture). A session counts an error, reloads the page it needs, and goes on.

Phases on the same server: a warm-up session (one round, loads the models; not counted), then 1 session (the
single-session reference, ``--single-reps`` rounds: a p95 of 3 samples is little more than their maximum, and moved
by 40% between runs), then ``--sessions`` sessions started together. The server's resident memory (``VmRSS``
of the server process and its children) is sampled every 0.2 s, and the CPU time of the server, of the clients
(Chromium, Playwright's driver, this script) and of the whole machine is recorded per phase: on a small machine the
simulated people's browsers share the cores with the server (``--client-nice 19`` gives the server priority).
The server's own share of each action is logged by ``bench/server_probe`` (put on the benchmark server's
``PYTHONPATH`` only): per script run, from receiving the browser's request to handing over the run's last message,
reported per page. ``--profile`` samples the server with py-spy ``--gil`` during the last phase.

Several replicas (``--replicas N``): N servers with the same settings, each session on one of them (session ``i``
on replica ``i mod N``, as a load balancer with sticky sessions places them; the warm-up has one session per
replica). With ``--server-env ATTNVIZ_RAY_ADDRESS=HOST:PORT`` the servers run their models on that Ray cluster's
actors (docs/deploy.md), whose CPU and memory are not in the server figures: the machine's CPU time is.
Server CPU is summed over the replicas; peak RSS is the largest of any one replica.

Usage::

    .venv/bin/python bench/load.py                         # 8 sessions x 3 rounds, after 1 x 8 (~6 min)
    .venv/bin/python bench/load.py --sessions 2 --reps 1 --single-reps 1   # a quick check
    .venv/bin/python bench/load.py --sessions 1            # the single-session figures only
    .venv/bin/python bench/load.py --think 5               # people pausing ~5 s (0-10 s) before each action
    .venv/bin/python bench/load.py --think 5 --seed 2      # ... with another pattern of pauses
    .venv/bin/python bench/load.py --replicas 2 --server-env ATTNVIZ_RAY_ADDRESS=127.0.0.1:6379   # 2 servers, Ray

The pauses are drawn from a seed per session, the same on every run of one ``--seed``: one pattern of collisions
(with the default seed, three sessions press their first Run within 0.11 s). The report's overlap table gives each
action's median latency by how many other sessions' actions were in progress during it.

Prints a Markdown table and PASS/MISS lines, and writes the raw numbers to ``bench/results/load.json``.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    PAGE_COLLECT,
    PAGE_INIT,
    PAGE_STATE,
    RESULTS,
    SERVER_ENV,
    UPLOAD,
    VIEWPORT,
    PageError,
    brief,
    cpu_seconds,
    environment,
    machine_cpu_seconds,
    make_text,
    percentile,
    photo_variant,
    process_tree,
    py_spy,
    rss_bytes,
    server_pid,
    settled,
    shows_picture,
    shows_tokens,
    single_token_words,
    stack_profile,
    wait_for_quiet_machine,
)
from tests.browser import CHROMIUM, CHROMIUM_ARGS, chromium_missing_reason, streamlit_server  # noqa: E402

ACTIONS = ("text run", "image upload", "mechanisms change", "page switch")
TITLES = {"Text": "Text attention", "Image": "Image attention", "Mechanisms": "Mechanisms"}
"""Sidebar link -> the start of that page's title."""
TOKENS = 512
LOG = RESULTS / "streamlit_load.log"
RUNLOG = RESULTS / "load_server_runs.jsonl"
"""One line per script run of the server: its own time from request to last message (``bench/server_probe``)."""
SERVER_PROBE = ROOT / "bench" / "server_probe"
TARGETS = {"p95_ratio": 3.0, "rss_bytes": 2 * 2**30}
STATE = f"() => {{ window.__bench.watch(); return ({PAGE_STATE})(); }}"
ARM = "() => { window.__bench.arm(); return new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0))); }"
START = "() => { window.__bench.click = performance.now(); }"
POLL_S = 0.5
PROFILE_RATE = 50
OPEN_TIMEOUT_S = 300
"""Seconds allowed for loading a page by its address (the first load of a model is slow)."""


class WrongContent(RuntimeError):
    """The page settled on content other than this session's (``kind`` is "wrong content" or "cross-talk")."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Inputs:
    """What every session sends, and what every page must show for it."""

    texts: dict[tuple[int, int], str] = field(default_factory=dict)
    """(session, rep) -> a 512-token text."""
    tokens: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    """(session, rep) -> its tokens as the model labels them."""
    pictures: dict[tuple[int, int], tuple[Path, tuple[int, int]]] = field(default_factory=dict)
    """(session, rep) -> (file, (width, height))."""

    def other_text(self, state: dict, own: tuple[int, int]) -> tuple[int, int] | None:
        """The (session, rep) of another session's text that the page shows, if any."""
        return next((k for k, t in self.tokens.items() if k[0] != own[0] and shows_tokens(state, t)), None)

    def other_picture(self, state: dict, own: tuple[int, int]) -> tuple[int, int] | None:
        """The (session, rep) of another session's picture named in the page's captions, if any."""
        return next((k for k, (p, _) in self.pictures.items()
                     if k[0] != own[0] and any(p.name in c for c in state["captions"])), None)


def build_inputs(sessions: int, reps: int, folder: Path) -> Inputs:
    """Distinct texts and pictures for sessions ``0 .. sessions - 1`` (ids are unique across phases)."""
    import attnviz

    model = attnviz.load_model("minilm")
    pool = single_token_words(model.tokenizer)
    inputs = Inputs()
    for sid in range(sessions):
        for r in range(reps):
            text = make_text(pool, TOKENS, f"load-s{sid}-r{r}")
            result = model.run(text=text)
            if result.n_tokens != TOKENS or result.truncated:
                raise RuntimeError(f"a {TOKENS}-token input came out as {result.n_tokens} tokens")
            inputs.texts[sid, r], inputs.tokens[sid, r] = text, list(result.tokens)
            path = folder / f"load-s{sid:02d}-r{r}.jpg"
            inputs.pictures[sid, r] = path, photo_variant(len(inputs.pictures), path)
    return inputs


class RssSampler(threading.Thread):
    """Samples the resident memory of a process and its children every ``period`` seconds."""

    def __init__(self, pid: int, period: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        tree, refreshed = [self.pid], 0.0
        while not self.stop.is_set():
            now = time.monotonic()
            if now - refreshed > 2.0:  # children change rarely; scanning /proc costs more than reading RSS
                tree, refreshed = process_tree(self.pid), now
            self.samples.append((time.time(), rss_bytes(tree)))
            self.stop.wait(self.period)

    def peak(self, since: float = 0.0, until: float = float("inf")) -> int:
        """Largest sample (bytes) taken between the times ``since`` and ``until`` (``time.time()``)."""
        return max((b for t, b in self.samples if since <= t <= until), default=0)


# ---------------------------------------------------------------------------------------------------------------
# One session
# ---------------------------------------------------------------------------------------------------------------
class Session:
    """One person: a browser context, a page, and the actions of one round."""

    def __init__(self, sid: int, ctx, url: str, inputs: Inputs, args: argparse.Namespace) -> None:
        self.sid, self.ctx, self.url, self.inputs, self.args = sid, ctx, url, inputs, args
        self.page = None
        self.opened = asyncio.Event()
        """Set once the first page has loaded (or failed to)."""
        self.records: list[dict] = []

    async def state(self) -> dict:
        return await self.page.evaluate(STATE)

    async def settle(self, done: Callable[[dict], bool], timeout_s: float | None = None) -> dict:
        """Poll the page state until ``done(state)``; ``TimeoutError`` (with ``.state``) after ``timeout_s``
        (default: the action timeout)."""
        timeout_s = timeout_s or self.args.action_timeout
        deadline = time.monotonic() + timeout_s
        state: dict = {}
        while time.monotonic() < deadline:
            state = await self.state()
            if done(state):
                return state
            await asyncio.sleep(POLL_S)
        err = TimeoutError(f"not shown within {timeout_s:.0f} s; last state: {brief(state)}")
        err.state = state  # type: ignore[attr-defined]
        raise err

    def idle(self, shows: Callable[[dict], bool] | None, media: bool) -> Callable[[dict], bool]:
        """:func:`bench.common.settled` with this run's quiet period."""
        return lambda s: settled(s, self.args.quiet_ms, shows, media, script_state=True)

    async def open(self, name: str) -> None:
        """Load a page directly (start, and recovery after an error)."""
        if self.page is None:
            self.page = await self.ctx.new_page()
        await self.page.goto(f"{self.url}/{name}", wait_until="domcontentloaded", timeout=120_000)
        loaded = self.idle(None, False)
        await self.settle(lambda s: loaded(s) and (s["title"] or "").startswith(TITLES[name]) and s["images"] > 0,
                          max(self.args.action_timeout, OPEN_TIMEOUT_S))

    async def timed(self, start: Callable[[], Awaitable[None]], shows: Callable[[dict], bool],
                    media: bool) -> dict:
        """Arm the instrumentation, run ``start`` (the action), wait until ``shows``; seconds to the last change,
        to the last websocket message (about when the server's script run ended) and in browser long tasks."""
        await self.page.evaluate(ARM)
        began = time.time()
        await start()
        await self.settle(self.idle(shows, media))
        c = await self.page.evaluate(PAGE_COLLECT)
        return {"began": began, "latency_s": max(c["lastMutation"], c["lastImgLoad"] or 0.0) / 1000,
                "ws_last_s": c["wsLast"] / 1000 if c["wsLast"] is not None else None,
                "longtask_s": c["longtaskMs"] / 1000}

    # ----------------------------------------------------------------------------------------------- actions
    async def start(self) -> dict:
        await self.open("Text")
        return {}

    async def text_run(self, rep: int) -> dict:
        key = (self.sid, rep)
        tokens = self.inputs.tokens[key]
        old = (await self.state())["gridSrc"]
        await self.page.get_by_label("Text", exact=True).fill(self.inputs.texts[key])
        await self.settle(self.idle(None, True))  # the form's own reaction to typing

        def shows(s: dict) -> bool:
            return (shows_tokens(s, tokens) and s["gridSrc"] != old
                    and any(f"{TOKENS} tokens" in c for c in s["captions"]))

        async def click() -> None:
            await self.page.get_by_role("button", name="Run").click()

        return await self.checked(key, click, shows, True)

    async def image_upload(self, rep: int) -> dict:
        key = (self.sid, rep)
        path, size = self.inputs.pictures[key]
        old = (await self.state())["gridSrc"]

        async def upload() -> None:
            await self.page.evaluate(START)
            await self.page.locator(UPLOAD).set_input_files(str(path))

        return await self.checked(key, upload, shows_picture(path.name, size, old), True)

    async def mechanisms_change(self, rep: int) -> dict:
        box = self.page.locator('[data-testid="stNumberInput"]', has_text="Heads").locator("input")
        heads = 1 if await box.input_value() == "3" else 3
        await box.fill(str(heads))

        async def enter() -> None:
            await self.page.evaluate(START)
            await box.press("Enter")

        def shows(s: dict) -> bool:
            return sum(t.startswith("Head ") for t in s["tabs"]) == heads

        return await self.checked((self.sid, rep), enter, shows, False)

    async def page_switch(self, name: str) -> dict:
        link = self.page.locator(f'[data-testid="stSidebarNavLink"][href$="/{name}"]')  # the text holds the icon's

        def shows(s: dict) -> bool:
            return ((s["title"] or "").startswith(TITLES[name]) and s["images"] > 0
                    and (name == "Mechanisms" or bool(s["axes"])))

        return await self.timed(link.click, shows, name != "Mechanisms")

    async def checked(self, key: tuple[int, int], start: Callable[[], Awaitable[None]],
                      shows: Callable[[dict], bool], media: bool) -> dict:
        """:meth:`timed`; a timeout whose last state shows another session's input is cross-talk, an idle page
        with other content is wrong content."""
        try:
            return await self.timed(start, shows, media)
        except TimeoutError as e:
            state = getattr(e, "state", {})
            if not state.get("ready"):
                raise
            other = self.inputs.other_text(state, key) or self.inputs.other_picture(state, key)
            if other is not None:
                raise WrongContent("cross-talk", f"session {self.sid} sees session {other[0]}'s input "
                                                 f"(rep {other[1]}); {brief(state)}") from None
            last = max(state["lastMutation"] or 0.0, state["lastImgLoad"] or 0.0)
            if not state["running"] and state["lastMutation"] is not None and state["now"] - last >= self.args.quiet_ms:
                raise WrongContent("wrong content", f"settled without this session's input: {brief(state)}") from None
            raise

    # ------------------------------------------------------------------------------------------------- a round
    async def act(self, rep: int | None, action: str, detail: str, needs: str | None,
                  run: Callable[..., Awaitable[dict]], *args: object) -> None:
        """Run one action with a time limit; record its latency or its error (then reload ``needs``)."""
        rec: dict = {"session": self.sid, "rep": rep, "action": action, "detail": detail, "t": time.time(),
                     "latency_s": None, "ws_last_s": None, "longtask_s": None, "error": None, "kind": None}
        try:
            limit = self.args.action_timeout + (OPEN_TIMEOUT_S if action == "start" else 0) + 30
            rec.update(await asyncio.wait_for(run(*args), limit))
        except Exception as e:  # every failure is counted, and the session goes on
            timeout = isinstance(e, TimeoutError) or type(e).__name__ == "TimeoutError"  # Playwright's too
            kind = (e.kind if isinstance(e, WrongContent) else "exception" if isinstance(e, PageError)
                    else "timeout" if timeout else "other")
            rec["kind"], rec["error"] = kind, f"{type(e).__name__}: {str(e)[:600]}"
            print(f"  ! session {self.sid} rep {rep} {action} ({detail}): {kind}: {str(e)[:300]}", flush=True)
            if needs:
                try:
                    await self.open(needs)
                except Exception as e2:
                    print(f"  ! session {self.sid}: could not reload {needs}: {str(e2)[:200]}", flush=True)
        self.records.append(rec)
        if self.args.verbose and rec["latency_s"] is not None and action != "start":
            print(f"    s{self.sid} r{rep} {action:17s} {detail:12s} {rec['latency_s']:6.3f} s (last ws message "
                  f"{rec['ws_last_s'] or 0:.3f} s, browser long tasks {rec['longtask_s']:.3f} s)", flush=True)

    async def rounds(self, reps: int, go: asyncio.Event) -> None:
        """Open the Text page, wait for ``go``, then ``reps`` rounds of the four actions."""
        await self.act(None, "start", "open Text", "Text", self.start)
        self.opened.set()
        await go.wait()
        think = random.Random(pause_seed(self.args.seed, self.sid))  # the same pauses on every run of one seed
        steps = [("text run", "512 tokens", "Text", self.text_run, None),
                 ("page switch", "→ Image", "Image", self.page_switch, "Image"),
                 ("image upload", "", "Image", self.image_upload, None),
                 ("page switch", "→ Mechanisms", "Mechanisms", self.page_switch, "Mechanisms"),
                 ("mechanisms change", "heads", "Mechanisms", self.mechanisms_change, None),
                 ("page switch", "→ Text", "Text", self.page_switch, "Text")]
        for rep in range(reps):
            for action, detail, page, step, arg in steps:
                if self.args.think:  # a person reading the page before the next action: 0 to 2x the mean
                    await asyncio.sleep(think.uniform(0, 2 * self.args.think))
                await self.act(rep, action, detail, page, step, rep if arg is None else arg)


def lower_browser_priority(nice: int) -> list[str]:
    """Give every Chromium process this script started the niceness ``nice``, as a group; the groups changed.

    ``os.nice`` does not reach Chromium: Playwright starts it in a session of its own, and with autogroup scheduling
    (Linux's default for desktop kernels, ``/proc/sys/kernel/sched_autogroup_enabled``) each session is a
    scheduling group that shares the CPU equally with the server's, whatever its processes' own niceness (which
    Chromium resets anyway). The group's niceness (``/proc/<pid>/autogroup``) is what weighs against the server."""
    changed = []
    own = os.getsid(0)
    for p in process_tree(os.getpid()):
        try:
            if os.getsid(p) == own or b"chrom" not in Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0", 1)[0]:
                continue
            group = Path(f"/proc/{p}/autogroup")
            name = group.read_text().split()[0]
            if name not in changed:
                group.write_text(str(nice))
                changed.append(name)
        except OSError:  # gone, or no autogroup scheduling here: the niceness cannot be given as a group
            continue
    return changed


def client_cpu(servers: list[int]) -> dict[int, float]:
    """CPU seconds of each process of this script's tree (Playwright's driver, Chromium, this script), without
    the servers'."""
    skip = {p for server in servers for p in process_tree(server)}
    return {p: cpu_seconds(p) or 0.0 for p in process_tree(os.getpid()) if p not in skip}


async def launch(pw, nice: int) -> object:
    """A headless Chromium; at niceness ``nice`` (its scheduling group) when ``nice`` is set."""
    browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    if nice:
        groups = lower_browser_priority(nice)
        print(f"browsers at niceness +{nice}: scheduling group(s) "
              f"{', '.join(groups) or 'none (no autogroup scheduling: only this script is reniced)'}", flush=True)
    return browser


async def run_phase(pw, shared, urls: list[str], sids: list[int], reps: int, inputs: Inputs, args,
                    servers: list[int]) -> tuple[list[dict], float]:
    """Sessions ``sids`` at once, each in its own browser context: of the ``shared`` browser, or (``shared`` None)
    of a browser of its own; all start their rounds together. Session ``sid`` uses the server ``urls[sid % n]``.
    Returns the records and the CPU seconds the clients used (measured before the contexts, and their renderers,
    close)."""
    own = [] if shared is not None else [await launch(pw, args.client_nice) for _ in sids]
    cpu0 = client_cpu(servers)
    go = asyncio.Event()
    sessions = []
    for i, sid in enumerate(sids):
        ctx = await (shared or own[i]).new_context(viewport=VIEWPORT)
        await ctx.add_init_script(PAGE_INIT)
        sessions.append(Session(sid, ctx, urls[sid % len(urls)], inputs, args))
    tasks = [asyncio.create_task(s.rounds(reps, go)) for s in sessions]
    for s in sessions:  # every session has its first page (or gave up), then all start together
        await s.opened.wait()
    go.set()
    await asyncio.gather(*tasks)
    cpu = sum(t - cpu0.get(p, 0.0) for p, t in client_cpu(servers).items())  # processes that ended are not counted
    for s in sessions:
        await s.ctx.close()
    for browser in own:
        await browser.close()
    return [rec for s in sessions for rec in s.records], cpu


# ---------------------------------------------------------------------------------------------------------------
# Summary and report
# ---------------------------------------------------------------------------------------------------------------
def server_runs(t0: float, t1: float) -> dict[str, dict]:
    """The server's own time per script run (request received -> the run's last message handed on) between wall
    times ``t0`` and ``t1``, by page: p50, p95, n, and the median number of sends that carried a run's messages to
    its browser (from :data:`RUNLOG`)."""
    by_page: dict[str, list[float]] = {}
    sends: dict[str, list[int]] = {}
    try:
        lines = RUNLOG.read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        run = json.loads(line)
        if t0 <= run["t"] <= t1:
            by_page.setdefault(run["page"] or "?", []).append(run["seconds"])
            if "sends" in run:
                sends.setdefault(run["page"] or "?", []).append(run["sends"])
    return {page: {"p50_s": percentile(v, 50), "p95_s": percentile(v, 95), "n": len(v),
                   "sends_p50": percentile(sends.get(page, []), 50)}
            for page, v in sorted(by_page.items())}


def summarize_phase(records: list[dict]) -> dict:
    out: dict = {}
    for action in ACTIONS:
        recs = [r for r in records if r["action"] == action]
        lat = [r["latency_s"] for r in recs if r["latency_s"] is not None]
        kinds: dict[str, int] = {}
        for r in recs:
            if r["kind"]:
                kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
        ok = [r for r in recs if r["latency_s"] is not None]
        out[action] = {"n": len(recs), "ok": len(lat), "errors": sum(kinds.values()), "error_kinds": kinds,
                       "p50_s": percentile(lat, 50), "p95_s": percentile(lat, 95), "max_s": max(lat, default=None),
                       "ws_last_p50_s": percentile([r["ws_last_s"] for r in ok if r["ws_last_s"] is not None], 50),
                       "longtask_p50_s": percentile([r["longtask_s"] for r in ok], 50)}
    failed_starts = [r for r in records if r["action"] == "start" and r["kind"]]
    out["_all"] = {"errors": sum(v["errors"] for k, v in out.items() if k in ACTIONS) + len(failed_starts),
                   "failed_starts": len(failed_starts),
                   "cross_talk": sum(v["error_kinds"].get("cross-talk", 0) for k, v in out.items() if k in ACTIONS)}
    return out


def pause_seed(seed: int, sid: int) -> int | str:
    """Seed of session ``sid``'s pauses: ``sid`` itself for seed 0 (the pauses of every run before ``--seed``)."""
    return sid if seed == 0 else f"{seed}/{sid}"


OVERLAP_BINS = (0, 1, 2, 3)
"""Columns of the overlap table: 0, 1, 2 and 3 or more other actions in progress."""


def overlaps(records: list[dict]) -> list[int]:
    """For each record, how many other sessions' timed actions were in progress during it (from the click, or
    from the record's start in runs made before ``began`` was recorded, to the last change).

    On 2 cores an action's latency is mostly set by how much other work it shares the cores with: the tail of a
    phase is its collisions (e.g. three Runs pressed within 0.1 s of each other)."""
    spans = [(b := r.get("began") or r["t"], b + (r["latency_s"] or 0.0), r["session"]) for r in records]
    return [sum(1 for t0, t1, sid in spans if sid != me and t0 < end and t1 > start)
            for start, end, me in spans]


def overlap_table(records: list[dict]) -> list[str]:
    """Markdown rows: per action, the median latency (and count) of its actions by how many others overlapped."""
    counts = overlaps(records)
    head = " | ".join(f"{k}{'+' if k == OVERLAP_BINS[-1] else ''} other{'' if k == 1 else 's'}" for k in OVERLAP_BINS)
    lines = [f"| action | {head} |", "|---" + "|---:" * len(OVERLAP_BINS) + "|"]
    for action in ACTIONS:
        row = [action]
        for k in OVERLAP_BINS:
            lat = [r["latency_s"] for r, c in zip(records, counts, strict=True)
                   if r["action"] == action and r["latency_s"] is not None
                   and (c == k or (k == OVERLAP_BINS[-1] and c > k))]
            row.append(f"{percentile(lat, 50):.2f} s (n={len(lat)})" if lat else "–")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def fmt_p(s: float | None) -> str:
    return "–" if s is None else f"{s:.2f}"


def report(data: dict) -> str:
    single, load = data["phases"].get("single"), data["phases"].get("load")
    n = data["sessions"]
    cols = ["action"]
    if single:
        cols += ["1 session p50 (s)", "p95 (s)", "n"]
    if load:
        cols += [f"{n} sessions p50 (s)", "p95 (s)", "n", "errors"]
    if single and load:
        cols += ["p95 ratio"]
    lines = ["| " + " | ".join(cols) + " |", "|---" + "|---:" * (len(cols) - 1) + "|"]
    for action in ACTIONS:
        row = [action]
        for ph in (single, load):
            if ph:
                a = ph["summary"][action]
                row += [fmt_p(a["p50_s"]), fmt_p(a["p95_s"]), str(a["ok"])]
        if load:
            a = load["summary"][action]
            row.append(str(a["errors"]) + (f" ({', '.join(f'{k} {v}' for k, v in a['error_kinds'].items())})"
                                            if a["errors"] else ""))
        if single and load:
            p1, pn = single["summary"][action]["p95_s"], load["summary"][action]["p95_s"]
            row.append(f"{pn / p1:.1f}×" if p1 and pn else "–")
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Medians (s): latency, last websocket message (≈ the server's script run done), browser long tasks:",
              "", "| action | " + " | ".join(f"{name} {what}" for name, ph in (("1 session", single),
                                                                            (f"{n} sessions", load)) if ph
                                            for what in ("latency", "last ws msg", "long tasks")) + " |",
              "|---" + "|---:" * (3 * bool(single) + 3 * bool(load)) + "|"]
    for action in ACTIONS:
        row = [action]
        for ph in (single, load):
            if ph:
                a = ph["summary"][action]
                row += [fmt_p(a["p50_s"]), fmt_p(a["ws_last_p50_s"]), fmt_p(a["longtask_p50_s"])]
        lines.append("| " + " | ".join(row) + " |")
    if load:
        lines += ["", f"{n} sessions: median latency by how many other sessions' actions were in progress during the "
                  "action (the tail is the collisions):", "", *overlap_table(load["records"])]
    pages = sorted({p for ph in (single, load) if ph for p in ph.get("server_runs", {})})
    if pages:
        lines += ["", "Server time per script run (the server's own share: from receiving the browser's request to "
                  "handing over the run's last message; `bench/server_probe`), by page, p50 / p95 (s), and the median "
                  "number of sends that carried a run's messages (the browser renders once per send):", "",
                  "| page | " + " | ".join(name for name, ph in (("1 session", single), (f"{n} sessions", load))
                                          if ph) + (" | p95 ratio |" if single and load else " |"),
                  "|---" + "|---:" * (bool(single) + bool(load) + bool(single and load)) + "|"]
        for page in pages:
            row, p95s = [page], []
            for ph in (single, load):
                if ph:
                    r = ph.get("server_runs", {}).get(page)
                    sends = f", {r['sends_p50']:.0f} sends" if r and r.get("sends_p50") is not None else ""
                    row.append(f"{fmt_p(r['p50_s'])} / {fmt_p(r['p95_s'])} (n={r['n']}{sends})" if r else "–")
                    p95s.append(r["p95_s"] if r else None)
            if single and load:
                row.append(f"{p95s[1] / p95s[0]:.1f}×" if all(p95s) else "–")
            lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    for name, ph in (("1 session", single), (f"{n} sessions", load)):
        if ph:
            lines.append(f"- {name}: {ph['wall_s']:.0f} s; CPU busy {ph['machine_cpu_s']:.0f} s of "
                         f"{ph['wall_s'] * (os.cpu_count() or 1):.0f} s ({os.cpu_count()} cores): server "
                         f"{ph['server_cpu_s']:.0f} s, clients {ph['client_cpu_s']:.0f} s (Chromium, Playwright, this "
                         f"script), other processes {ph['machine_cpu_s'] - ph['server_cpu_s'] - ph['client_cpu_s']:.0f}"
                         f" s; server peak "
                         f"RSS {ph['peak_rss'] / 2**30:.2f} GiB; load average {ph['loadavg_start']:.1f} → "
                         f"{ph['loadavg_end']:.1f}, errors {ph['summary']['_all']['errors']}")
    lines.append(f"- server peak RSS over the whole run (incl. warm-up): {data['peak_rss'] / 2**30:.2f} GiB")
    prof = data.get("profile")
    if prof and prof["samples"]:
        lines += ["", f"Server, {prof['phase']} phase (py-spy --gil): a thread held the GIL "
                  f"{prof['gil_held_share']:.0%} of the time; in (share of GIL-holding samples):", "",
                  "| frame | inclusive | | leaf frame | self |", "|---|---:|---|---|---:|"]
        for (fi, si), (fs, ss) in zip(prof["inclusive"], prof["self"], strict=False):
            lines.append(f"| `{fi}` | {si:.0%} | | `{fs}` | {ss:.0%} |")
    return "\n".join(lines)


def check_targets(data: dict) -> list[str]:
    out = []

    def line(ok: bool, what: str) -> None:
        out.append(f"[{'PASS' if ok else 'MISS'}] {what}")

    single, load = data["phases"].get("single"), data["phases"].get("load")
    main = load or single
    errs = main["summary"]["_all"]
    line(errs["errors"] == 0, f"errors: {errs['errors']} (stException, timeout, wrong content) = 0")
    line(errs["cross_talk"] == 0, f"cross-talk: {errs['cross_talk']} sessions saw another's input = 0")
    if single and load:
        for action in ACTIONS:
            p1, pn = single["summary"][action]["p95_s"], load["summary"][action]["p95_s"]
            if p1 and pn:
                line(pn <= TARGETS["p95_ratio"] * p1, f"{action}: p95 {pn:.2f} s with {data['sessions']} sessions "
                     f"≤ 3 × {p1:.2f} s (1 session) = {3 * p1:.2f} s ({pn / p1:.1f}×)")
    line(data["peak_rss"] <= TARGETS["rss_bytes"], f"server peak RSS {data['peak_rss'] / 2**30:.2f} GiB ≤ 2 GiB")
    return out


def server_errors(log: Path) -> list[str]:
    """Tracebacks and error lines in the server's log."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [ln for ln in lines if re.search(r"Traceback|Error|Exception|CRITICAL", ln)][:50]


# ---------------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------------
async def bench(args, inputs: Inputs, phases: dict[str, list[int]]) -> dict:
    from playwright.async_api import async_playwright

    out: dict = {"phases": {}}
    RUNLOG.unlink(missing_ok=True)
    probe_env = {"ATTNVIZ_BENCH_RUNLOG": str(RUNLOG), "PYTHONPATH": str(SERVER_PROBE)}
    logs = [LOG] + [LOG.with_name(f"{LOG.stem}_{i}{LOG.suffix}") for i in range(1, args.replicas)]
    with contextlib.ExitStack() as stack:
        urls = [stack.enter_context(streamlit_server(log, extra_env={**args.server_env, **probe_env},
                                                     port=args.ports[i] if args.ports else None))
                for i, log in enumerate(logs)]
        pids = [server_pid(url) for url in urls]
        if None in pids:
            raise RuntimeError("could not find a server's process id")
        if args.client_nice:
            os.nice(args.client_nice)  # this script, Playwright's driver and Chromium; the servers keep their own
        samplers = [RssSampler(pid) for pid in pids]
        for sampler in samplers:
            sampler.start()

        def server_cpu() -> float:
            return sum(cpu_seconds(pid) or 0.0 for pid in pids)

        try:
            async with async_playwright() as pw:
                browser = await launch(pw, args.client_nice) if args.browsers == "shared" else None
                for phase, sids in phases.items():
                    reps = {"warm-up": 1, "single": args.single_reps}.get(phase, args.reps)
                    print(f"{phase}: {len(sids)} session(s) × {reps} round(s)", flush=True)
                    t0, cpu0, load0, all0 = time.time(), server_cpu(), os.getloadavg()[0], machine_cpu_seconds()
                    spy = (py_spy(pids[0], RESULTS / "load.pyspy.txt", PROFILE_RATE, gil=True)
                           if args.profile and phase == list(phases)[-1] else contextlib.nullcontext())
                    with spy as raw:
                        records, client_cpu = await run_phase(pw, browser, urls, sids, reps, inputs, args, pids)
                    t1, cpu1, all1 = time.time(), server_cpu(), machine_cpu_seconds()
                    out["phases"][phase] = {
                        "sessions": len(sids), "reps": reps, "wall_s": t1 - t0,
                        "server_cpu_s": cpu1 - cpu0, "client_cpu_s": client_cpu,
                        "machine_cpu_s": all1 - all0,
                        "peak_rss": max(s.peak(t0, t1) for s in samplers),
                        "loadavg_start": load0, "loadavg_end": os.getloadavg()[0],
                        "summary": summarize_phase(records), "records": records,
                        "server_runs": server_runs(t0, t1)}
                    if raw is not None and raw.exists():
                        prof = stack_profile(raw)
                        prof["gil_held_share"] = prof["samples"] / (PROFILE_RATE * (t1 - t0))
                        out["profile"] = {"phase": phase, **prof}
                    s = out["phases"][phase]["summary"]
                    print("  " + "; ".join(f"{a} p50 {fmt_p(s[a]['p50_s'])} s p95 {fmt_p(s[a]['p95_s'])} s"
                                           + (f" ({s[a]['errors']} errors)" if s[a]["errors"] else "")
                                           for a in ACTIONS), flush=True)
                if browser is not None:
                    await browser.close()
        finally:
            for sampler in samplers:
                sampler.stop.set()
                sampler.join()
        out["peak_rss"] = max(s.peak() for s in samplers)
        out["peak_rss_each"] = [s.peak() for s in samplers]
        out["rss_samples"] = samplers[0].samples[::5]  # one a second (the first replica)
    out["server_log_errors"] = [line for log in logs for line in server_errors(log)][:50]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sessions", type=int, default=8, help="concurrent sessions (browser contexts)")
    ap.add_argument("--reps", type=int, default=3, help="rounds per session")
    ap.add_argument("--single-reps", type=int, default=8,
                    help="rounds of the single-session reference (with --sessions 1: of the only phase)")
    ap.add_argument("--no-baseline", dest="baseline", action="store_false",
                    help="skip the single-session phase (ratios are then not reported)")
    ap.add_argument("--quiet-ms", type=int, default=1500, help="no mutation for this long = the page is idle")
    ap.add_argument("--action-timeout", type=float, default=120, help="seconds allowed for one action")
    ap.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                    help=f"environment for the Streamlit server (repeatable); defaults: {SERVER_ENV}")
    ap.add_argument("--max-load", type=float, default=None,
                    help="first wait (up to 30 min) until the 1-minute load average is below this")
    ap.add_argument("--client-nice", type=int, default=0,
                    help="run the browsers (and this script) at this niceness above the server's, so the server "
                         "gets the CPU first, as if the people's browsers ran on their own machines")
    ap.add_argument("--browsers", choices=("shared", "own"), default="shared",
                    help="shared: one Chromium, a context per session (its browser process, compositor and "
                         "network service serve everyone); own: a Chromium per session, as each person's own "
                         "browser")
    ap.add_argument("--think", type=float, default=0.0, metavar="S",
                    help="a pause before each action, uniform in 0..2S seconds and different per session, as people "
                         "reading the page: sessions drift apart instead of acting in lockstep (default 0)")
    ap.add_argument("--seed", type=int, default=0,
                    help="which pauses (--think): the same seed gives every session the same pauses on every run "
                         "(0: those of all runs before this option); other seeds sample other patterns of "
                         "collisions")
    ap.add_argument("--profile", action="store_true",
                    help="sample the server with py-spy --gil during the last phase: how much of the time one thread "
                         "held Python's GIL, and in what")
    ap.add_argument("--replicas", type=int, default=1,
                    help="servers with the same settings; session i uses replica i mod N (sticky sessions)")
    ap.add_argument("--ports", type=lambda v: [int(p) for p in v.split(",")], default=None, metavar="P,P,...",
                    help="the servers' ports, one per replica (default: free ports)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every action's latency")
    ap.add_argument("--out", type=Path, default=RESULTS / "load.json")
    args = ap.parse_args(argv)
    args.server_env = {**SERVER_ENV, **dict(kv.split("=", 1) for kv in args.server_env)}
    wait_for_quiet_machine(args.max_load)
    reason = chromium_missing_reason()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)

    if args.replicas < 1 or (args.ports and len(args.ports) != args.replicas):
        ap.error("--replicas must be at least 1, and --ports must give one port per replica")
    sizes = {"warm-up": args.replicas}  # one warm-up session per replica: it loads that server's models
    if args.baseline and args.sessions > 1:
        sizes["single"] = 1
    sizes["load" if args.sessions > 1 else "single"] = args.sessions
    phases, first = {}, 0
    for name, n in sizes.items():
        phases[name], first = list(range(first, first + n)), first + n
    with tempfile.TemporaryDirectory(prefix="attnviz-bench-load-") as tmp:
        inputs = build_inputs(first, max(args.reps, args.single_reps), Path(tmp))
        data: dict = {"environment": environment(), "args": {k: str(v) for k, v in vars(args).items()},
                      "sessions": args.sessions, "reps": args.reps, "single_reps": args.single_reps}
        print(f"{sum(sizes.values())} sessions' inputs ready ({TOKENS}-token texts, pictures e.g. "
              f"{inputs.pictures[0, 0][0].name} {inputs.pictures[0, 0][1]}); load average "
              f"{data['environment']['loadavg_start']}", flush=True)
        data.update(asyncio.run(bench(args, inputs, phases)))
    data["environment"]["loadavg_end"] = os.getloadavg()
    data["targets"] = check_targets(data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1, default=str))

    print()
    print(report(data))
    print()
    print("\n".join(data["targets"]))
    if data["server_log_errors"]:
        print(f"\nserver log ({LOG}) has {len(data['server_log_errors'])} error lines, e.g.:\n  "
              + "\n  ".join(data["server_log_errors"][:5]))
    env = data["environment"]
    print(f"\nload average {', '.join(f'{x:.1f}' for x in env['loadavg_start'])} → "
          f"{', '.join(f'{x:.1f}' for x in env['loadavg_end'])} (1, 5, 15 min; other processes share the "
          f"{os.cpu_count()} cores); server env {args.server_env}; browsers at niceness +{args.client_nice}; "
          f"raw numbers in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
