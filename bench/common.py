"""Shared pieces of the browser benchmarks (``browser_latency.py``, ``image_latency.py``, ``load.py``).

In-page instrumentation of Streamlit's main area (a MutationObserver, ``<img>`` loads, websocket bytes, long tasks),
the page-state probe and the "shown and idle" rule, CDP byte counting, the server's process (CPU seconds, RSS),
py-spy sampling, inputs, formatting and the environment record.
"""
from __future__ import annotations

import base64
import contextlib
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.browser import CHROMIUM  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SERVER_ENV = {"STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}
"""The app as deployed, not in development mode: Streamlit's file watcher (on by default) costs CPU and, when
files under the repository change during a run (other people's edits, test artefacts), reloads modules mid-run.
Measure its effect with ``--server-env STREAMLIT_SERVER_FILE_WATCHER_TYPE=auto``."""
VIEWPORT = {"width": 1400, "height": 1000}

# ---------------------------------------------------------------------------------------------------------------
# In-page instrumentation (attnviz page). Installed before any page script runs, so Streamlit's websocket is ours.
# ---------------------------------------------------------------------------------------------------------------
PAGE_INIT = r"""
(() => {
  const B = window.__bench = {armed: false, click: null, anyMutation: 0, lastMutation: null, lastByKind: {},
                              mutations: 0, lastImgLoad: null, ws: [], longtasks: []};
  const Native = window.WebSocket;
  class BenchWebSocket extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => {
        if (B.click === null) return;
        const d = e.data;
        const n = typeof d === 'string' ? new TextEncoder().encode(d).length : (d.byteLength ?? d.size ?? 0);
        B.ws.push([performance.now(), n]);
      });
    }
  }
  window.WebSocket = BenchWebSocket;
  window.addEventListener('click', (e) => { if (B.armed && B.click === null) B.click = e.timeStamp; }, true);
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if (B.click !== null && e.startTime >= B.click) B.longtasks.push([e.startTime, e.duration]);
      }
    }).observe({type: 'longtask', buffered: false});
  } catch (err) { /* longtask not supported */ }
  B.arm = () => {
    B.armed = true; B.click = null; B.lastMutation = null; B.lastByKind = {}; B.mutations = 0; B.lastImgLoad = null;
    B.ws = []; B.longtasks = []; performance.clearResourceTimings();
  };
  B.watch = () => {  // called once the main area exists; it persists across reruns
    const main = document.querySelector('[data-testid="stMain"]');
    if (!main || B.observed === main) return !!main;
    B.observed = main;
    const kind = (node) => {
      const el = node && (node.nodeType === 1 ? node : node.parentElement);
      if (!el) return 'other';
      if (el.closest('[data-testid="stPlotlyChart"]')) return 'plotly';
      if (el.closest('[data-testid="stImage"]')) return 'image';
      return 'other';
    };
    new MutationObserver((records) => {
      const t = performance.now();
      B.anyMutation = t;
      if (B.click === null) return;
      B.mutations += records.length;
      B.lastMutation = t;
      for (const r of records) B.lastByKind[kind(r.target)] = t;
    }).observe(main, {childList: true, subtree: true, attributes: true, characterData: true});
    main.addEventListener('load', (e) => {
      if (B.click !== null && e.target.tagName === 'IMG') B.lastImgLoad = performance.now();
    }, true);
    return true;
  };
})();
"""

PAGE_STATE = r"""
() => {
  const main = document.querySelector('[data-testid="stMain"]');
  if (!main) return {ready: false};
  const B = window.__bench;
  const running = !!document.querySelector('[data-testid="stStatusWidget"]')
                  || !!main.querySelector('[data-testid="stSpinner"]');
  const imgs = [...main.querySelectorAll('img')];
  const charts = [...main.querySelectorAll('[data-testid="stPlotlyChart"]')];
  const plots = charts.map((c) => c.querySelector('.js-plotly-plot'));
  const drawn = plots.filter((p) => p && p._fullLayout && p.querySelector('.main-svg') && p.data && p.data.length);
  const grid = main.querySelector('[data-testid="stImage"] img');
  const sample = (x) => ({n: x.length, labels: Object.fromEntries(SAMPLE(x.length).map((i) => [i, String(x[i])]))});
  // a long input's matrix is an image, its tokens listed by position under it (attnviz.web.matrix.matrix_view)
  const listed = main.querySelector('.st-key-text_token_positions [data-testid="stText"]');
  return {
    ready: true, running, now: performance.now(), click: B.click, lastMutation: B.lastMutation,
    anyMutation: B.anyMutation,
    lastImgLoad: B.lastImgLoad,
    exception: [...main.querySelectorAll('[data-testid="stException"]')].map((e) => e.innerText).join('\n'),
    imgsOk: imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0),
    charts: charts.length,
    axes: drawn.length ? drawn.map((p) => sample(p.data[0].x || []))
          : listed ? [sample(listed.textContent.split(/ {3}(?=\d+·)/))] : [],
    gridSrc: grid ? grid.currentSrc || grid.src : null,
    // for pages that may hold no image or no chart (image_latency.py, load.py)
    imgsLoaded: imgs.every((i) => i.complete && i.naturalWidth > 0),
    plotsDrawn: drawn.length === charts.length, images: main.querySelectorAll('[data-testid="stImage"] img').length,
    title: (main.querySelector('h1') || {}).textContent || null,
    captions: [...main.querySelectorAll('[data-testid="stCaptionContainer"]')].map((e) => e.textContent.slice(0, 300)),
    tabs: [...main.querySelectorAll('[role="tab"]')].map((e) => e.textContent),
    // Streamlit's own run state ("running", "notRunning", ...): the status widget is hidden by toolbarMode
    // "minimal" and the spinner covers only part of a run
    scriptState: (document.querySelector('[data-test-script-state]') || {dataset: {}}).dataset.testScriptState || null,
  };
}
""".replace("SAMPLE", "((n) => [...new Set([1, 2, 3, Math.floor(n / 2), n - 2])].filter((i) => i >= 0 && i < n))")

PAGE_COLLECT = r"""
() => {
  const B = window.__bench;
  const res = performance.getEntriesByType('resource').filter((e) => e.startTime >= B.click).map((e) => ({
    name: e.name, transferSize: e.transferSize, encodedBodySize: e.encodedBodySize, decodedBodySize: e.decodedBodySize,
    start: e.startTime - B.click, end: e.responseEnd - B.click}));
  const rel = (t) => (t === null || t === undefined) ? null : t - B.click;
  const byKind = Object.fromEntries(Object.entries(B.lastByKind).map(([k, t]) => [k, rel(t)]));
  return {
    click: B.click, lastMutation: rel(B.lastMutation), lastImgLoad: rel(B.lastImgLoad), lastByKind: byKind,
    mutations: B.mutations, wsFrames: B.ws.length, wsBytes: B.ws.reduce((a, f) => a + f[1], 0),
    wsFirst: B.ws.length ? rel(B.ws[0][0]) : null, wsLast: B.ws.length ? rel(B.ws[B.ws.length - 1][0]) : null,
    wsLargest: B.ws.reduce((a, f) => Math.max(a, f[1]), 0),
    longtaskMs: B.longtasks.reduce((a, t) => a + t[1], 0), longtasks: B.longtasks.length, resources: res,
  };
}
"""


# ---------------------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------------------
def single_token_words(tokenizer) -> list[str]:
    """Lower-case ASCII words that are one WordPiece token each (so n-2 words + [CLS]/[SEP] = n tokens)."""
    words = sorted(w for w in tokenizer.get_vocab() if w.isascii() and w.isalpha() and w.islower() and 3 <= len(w) <= 9)
    ids = tokenizer(words, add_special_tokens=False)["input_ids"]
    return [w for w, i in zip(words, ids, strict=True) if len(i) == 1]


def make_text(pool: list[str], n_tokens: int, label: str) -> str:
    """A text of ``n_tokens - 2`` distinct-looking words, deterministic in ``label``."""
    return " ".join(random.Random(f"attnviz-bench-{n_tokens}-{label}").sample(pool, n_tokens - 2))



# ---------------------------------------------------------------------------------------------------------------
# attnviz
# ---------------------------------------------------------------------------------------------------------------
class NetLog:
    """Bytes the page receives, from CDP Network events (reset just before each click)."""

    def __init__(self, cdp) -> None:
        self.urls: dict[str, str] = {}
        self.ws_extensions: str | None = None
        self.reset()
        cdp.on("Network.requestWillBeSent", self._request)
        cdp.on("Network.loadingFinished", self._finished)
        cdp.on("Network.webSocketFrameReceived", self._frame)
        cdp.on("Network.webSocketHandshakeResponseReceived", self._handshake)
        cdp.send("Network.enable")

    def reset(self) -> None:
        self.ws_bytes = 0
        self.ws_frames = 0
        self.http: list[dict] = []

    def _request(self, p: dict) -> None:
        self.urls[p["requestId"]] = p["request"]["url"]

    def _finished(self, p: dict) -> None:
        url = self.urls.get(p["requestId"], "?")
        if not url.startswith("data:"):  # Plotly draws heatmaps through data: URLs; nothing is transferred
            self.http.append({"url": url, "bytes": int(p.get("encodedDataLength", 0))})

    def _frame(self, p: dict) -> None:
        r = p["response"]
        data = r.get("payloadData", "")
        self.ws_bytes += len(base64.b64decode(data)) if r.get("opcode") == 2 else len(data.encode("utf-8"))
        self.ws_frames += 1

    def _handshake(self, p: dict) -> None:
        headers = {k.lower(): v for k, v in p["response"].get("headers", {}).items()}
        self.ws_extensions = headers.get("sec-websocket-extensions", "")

    @property
    def http_bytes(self) -> int:
        return sum(h["bytes"] for h in self.http)


def server_pid(url: str) -> int | None:
    """The process serving ``url`` (a ``streamlit run`` started by this script), found through /proc (Linux)."""
    port = url.rsplit(":", 1)[-1].encode()
    for d in Path("/proc").glob("[0-9]*"):
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in b" ".join(argv) and b"--server.port" in argv and port in argv:
            return int(d.name)
    return None


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process (all its threads), or None."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds(name: str, root: int | None = None) -> float | None:
    """User + system CPU time of the processes under ``root`` (this process by default) whose command name
    contains ``name`` (e.g. ``"chrom"``: the headless browser this script started), summed; None without /proc."""
    root = os.getpid() if root is None else root
    parents: dict[int, int] = {}
    times: dict[int, tuple[str, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for d in Path("/proc").glob("[0-9]*"):
        try:
            head, _, rest = (d / "stat").read_text().rpartition(")")
        except OSError:
            continue
        fields = rest.split()
        parents[int(d.name)] = int(fields[1])
        times[int(d.name)] = (head.partition("(")[2], (int(fields[11]) + int(fields[12])) / tick)
    if not times:
        return None

    def under(pid: int) -> bool:
        seen = set()
        while pid in parents and pid not in seen:
            if pid == root:
                return True
            seen.add(pid)
            pid = parents[pid]
        return False

    return sum(t for pid, (comm, t) in times.items() if name in comm and under(pid))


class PageError(RuntimeError):
    """The page shows an exception instead of the result."""


def server_log_tail(lines: int = 15, path: Path | None = None) -> str:
    """The last lines of the server's log (default ``bench/results/streamlit.log``)."""
    try:
        return "\n".join((path or RESULTS / "streamlit.log").read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def page_state(page, state_js: str = PAGE_STATE) -> dict:
    page.evaluate("() => window.__bench.watch()")
    return page.evaluate(state_js)


SCRIPT_BUSY = ("running", "rerunRequested")
"""Values of ``data-test-script-state`` while a script run is under way or about to start."""


def settled(state: dict, quiet_ms: int, shows: Callable[[dict], bool] | None, media: bool = True,
            script_state: bool = False) -> bool:
    """Whether a polled page state is final.

    Without ``shows`` (page load, typing): idle and no mutation anywhere for ``quiet_ms``. With ``shows`` (after
    an action armed with ``window.__bench.arm()``): idle, ``shows(state)`` holds, something changed after the
    action, and nothing changed (mutation or image load) for ``quiet_ms``; a Python exception on the idle page
    raises :class:`PageError`. ``media``: at least one image, and every image loaded and every chart drawn
    (else only the ones present must be). ``script_state``: "idle" also needs Streamlit's run state to be done
    (without it, only the status widget and spinners count, as in ``browser_latency.py``'s measurements so far)."""
    if script_state and state.get("ready"):
        state = {**state, "running": state["running"] or state.get("scriptState") in SCRIPT_BUSY}
    if (shows is not None and state.get("ready") and state["exception"] and not state["running"]
            and state["click"] is not None
            and state["now"] - max(state["lastMutation"] or 0.0, state["click"]) >= quiet_ms):
        raise PageError(f"the page shows a Python exception: {state['exception'][:300]}")
    if not (state.get("ready") and not state["running"]):
        return False
    if not (state["imgsOk"] if media else state["imgsLoaded"]) or not state["plotsDrawn"]:
        return False
    if shows is None:
        return state["now"] - state["anyMutation"] >= quiet_ms
    if not shows(state) or state["click"] is None or state["lastMutation"] is None:
        return False
    return state["now"] - max(state["lastMutation"], state["lastImgLoad"] or 0.0) >= quiet_ms


def brief(state: dict) -> dict:
    """A state without its bulky fields, for error messages."""
    return {k: v for k, v in state.items() if k not in ("axes", "captions")}


def wait_until(page, shows: Callable[[dict], bool] | None, quiet_ms: int, timeout_s: float,
               media: bool = True, script_state: bool = False) -> dict:
    """Poll until :func:`settled`; return the last state (``TimeoutError`` after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    state: dict = {}
    while time.monotonic() < deadline:
        state = page_state(page)
        if settled(state, quiet_ms, shows, media, script_state):
            return state
        time.sleep(0.1)
    raise TimeoutError(f"page not idle with the new input after {timeout_s:.0f} s; last state: {brief(state)}")


def wait_shown(page, tokens: list[str] | None, old_src: str | None, quiet_ms: int, timeout_s: float) -> dict:
    """Poll until the page is idle and (when ``tokens`` is given) shows that input; return the last state."""
    shows = None if tokens is None else (lambda s: shows_tokens(s, tokens) and s["gridSrc"] != old_src)
    return wait_until(page, shows, quiet_ms, timeout_s)


def shows_tokens(state: dict, tokens: list[str]) -> bool:
    """The focused head shows one label per token (its chart's axes, or the list under its image), and sampled
    labels carry the expected token."""
    if not state["axes"]:
        return False
    for axis in state["axes"]:
        if axis["n"] != len(tokens):
            return False
        for i, label in axis["labels"].items():
            if not label.endswith(tokens[int(i)]):
                return False
    return True



def summarize(runs: list[dict]) -> dict:
    def med(key: str) -> float | None:
        vals = [r[key] for r in runs if r.get(key) is not None]
        return statistics.median(vals) if vals else None

    lat = [r["latency_s"] for r in runs]
    return {"n": len(runs), "latency_s": med("latency_s"), "latency_min_s": min(lat), "latency_max_s": max(lat),
            "bytes": med("bytes"), "ws_bytes": med("ws_bytes"), "http_bytes": med("http_bytes"),
            "ws_first_s": med("ws_first_s"), "ws_last_s": med("ws_last_s"), "media_end_s": med("media_end_s"),
            "last_img_load_s": med("last_img_load_s"), "longtask_s": med("longtask_s"),
            "server_cpu_s": med("server_cpu_s"), "loadavg": med("loadavg"),
            "last_plotly_change_s": statistics.median([r["last_change_by_area_s"].get("plotly", 0.0) for r in runs])}



def fmt_s(s: float | None) -> str:
    return "–" if s is None else f"{s:.3f} s" if s < 10 else f"{s:.1f} s"


def fmt_bytes(b: float | None) -> str:
    if b is None:
        return "–"
    for unit, k in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if b >= k:
            return f"{b / k:.1f} {unit}" if b / k < 100 else f"{b / k:.0f} {unit}"
    return f"{b:.0f} B"



def environment() -> dict:
    def run(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    import playwright
    import streamlit
    import torch

    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
            "chromium": run(CHROMIUM, "--version"), "streamlit": streamlit.__version__, "torch": torch.__version__,
            "playwright": getattr(playwright, "__version__", "?"), "git_head": run("git", "rev-parse", "HEAD"),
            "git_dirty_files": [ln for ln in run("git", "status", "--porcelain").splitlines() if ln],
            "loadavg_start": os.getloadavg(), "niceness": os.nice(0)}



def wait_for_quiet_machine(max_load: float | None, limit_s: float = 1800) -> None:
    """Wait (up to ``limit_s``) until the 1-minute load average is below ``max_load``; None = don't wait."""
    if max_load is None:
        return
    deadline = time.monotonic() + limit_s
    while os.getloadavg()[0] >= max_load and time.monotonic() < deadline:
        print(f"waiting for load average < {max_load} (now {os.getloadavg()[0]:.2f})", flush=True)
        time.sleep(30)


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100, linear between closest ranks), or None for no values."""
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q / 100
    lo = int(k)
    return v[lo] + (v[min(lo + 1, len(v) - 1)] - v[lo]) * (k - lo)


# ---------------------------------------------------------------------------------------------------------------
# The server process: memory and where its CPU time goes
# ---------------------------------------------------------------------------------------------------------------
def machine_cpu_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores; /proc/stat: user, nice, system, irq, softirq,
    steal)."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc/*/stat parent ids)."""
    parents: dict[int, list[int]] = {}
    for d in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def rss_bytes(pids: list[int]) -> int:
    """Sum of the resident set sizes (``VmRSS``) of ``pids``; processes that are gone count 0."""
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total


PY_SPY = os.environ.get("PY_SPY") or str(Path(sys.executable).with_name("py-spy"))
"""py-spy (``--profile``): not among the dev requirements; ``.venv/bin/pip install py-spy`` puts it here."""


@contextlib.contextmanager
def py_spy(pid: int | None, out: Path, rate: int = 100, gil: bool = False) -> Iterator[Path | None]:
    """Sample ``pid``'s Python stacks with py-spy (``record -f raw``, non-blocking) while the block runs; yields
    the output path, or None when py-spy or the pid is missing (the block still runs). ``gil``: only samples of
    the thread holding the GIL (so samples / (rate x seconds) is the share of time the GIL was held)."""
    if pid is None or not Path(PY_SPY).exists():
        print(f"py-spy not run ({'no server pid' if pid is None else f'{PY_SPY} not found; set PY_SPY'})",
              flush=True)
        yield None
        return
    cmd = [PY_SPY, "record", "-p", str(pid), "-f", "raw", "-o", str(out), "-r", str(rate), "--nonblocking"]
    proc = subprocess.Popen(cmd + (["--gil"] if gil else []), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # attach
    try:
        yield out
    finally:
        proc.send_signal(2)  # SIGINT: py-spy writes its file and exits
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            err = b""
        if not out.exists():
            print(f"py-spy wrote nothing: {err.decode(errors='replace')[-300:]}", flush=True)


def stack_profile(raw: Path, top: int = 25) -> dict:
    """Summarise a py-spy raw file (``frame;frame;... count`` per line): samples, and the frames with the most
    inclusive (on the stack) and self (leaf) samples, as shares of all samples."""
    incl: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [short_frame(f) for f in stack.split(";")]
        for f in set(frames):
            incl[f] += n
        leaf[frames[-1]] += n
    share = (lambda c: [(f, n / total) for f, n in c.most_common(top)]) if total else (lambda c: [])
    return {"samples": total, "inclusive": share(incl), "self": share(leaf)}


def short_frame(frame: str) -> str:
    """``fn (/long/path/site-packages/pkg/mod.py:12)`` -> ``fn (pkg/mod.py)`` (line numbers merged)."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", str(ROOT) + "/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


# ---------------------------------------------------------------------------------------------------------------
# Inputs: distinct pictures (so Streamlit's result cache cannot serve them)
# ---------------------------------------------------------------------------------------------------------------
UPLOAD = '[data-testid="stFileUploaderDropzoneInput"]'
"""The Image page's file ``<input>`` (for ``set_input_files``)."""
OVERLAYS = 5
"""``st.image`` elements on the Image page: all heads, focused head, raw heatmap, rollout, per layer."""
PHOTOS = ("astronaut.jpg", "cat.jpg", "coffee.jpg", "rocket.jpg")
"""Example photos (assets/examples) the benchmark pictures are made from."""


def photo_variant(i: int, path: Path, longest: int | None = None) -> tuple[int, int]:
    """Write the ``i``-th variant of the example photos to ``path`` (JPEG, quality 90) and return its size.

    Photo ``i % 4``, cropped by ``8k + 1`` pixels at the right and bottom (``k = i // 4``), mirrored when ``k`` is
    odd and, with ``longest``, resized to that longer side: every ``i`` gives different bytes and a different size.
    """
    from PIL import Image, ImageOps

    src = Image.open(ROOT / "assets" / "examples" / PHOTOS[i % len(PHOTOS)]).convert("RGB")
    k = i // len(PHOTOS)
    img = src.crop((0, 0, src.width - 8 * k - 1, src.height - 8 * k - 1))
    if k % 2:
        img = ImageOps.mirror(img)
    if longest:
        scale = longest / max(img.size)
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
    img.save(path, "JPEG", quality=90)
    return img.size


def shows_picture(name: str, size: tuple[int, int], old_src: str | None) -> Callable[[dict], bool]:
    """A :func:`settled` predicate for the Image page: its caption names the file ``name`` of ``size`` (w, h),
    the all-heads grid is a new image, and all :data:`OVERLAYS` images are there."""
    wh = f"{size[0]}×{size[1]} px"

    def shows(state: dict) -> bool:
        return (state["images"] >= OVERLAYS and state["gridSrc"] != old_src
                and any(name in c and wh in c for c in state["captions"]))

    return shows
