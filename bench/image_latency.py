"""Issue 3's benchmark: the Image page, from uploading a picture to every overlay shown, in headless Chromium.

``streamlit run app.py`` (Streamlit's file watcher off, as ``browser_latency.py``), the Image page with its default
model (dinov2-small). A run: ``set_input_files`` on the uploader's ``<input>``; the clock starts just before it. It
ends at the last change of the page's main area (the last DOM mutation inside ``[data-testid="stMain"]`` or the last
``<img>`` load there, whichever is later). A run counts once the page is idle (Streamlit's run state done, no
spinner, no mutation for ``--quiet-ms``, every ``<img>`` loaded, every Plotly chart drawn) and shows the new
picture: its file name in the caption, a new all-heads grid image, and all five overlay images (grid, focused head,
raw heatmap, rollout, per-layer) loaded. One warm-up upload (after the page's first load, which also loads the
model), then ``--reps`` uploads of distinct pictures (variants of the example photos: cropped, mirrored; "cold": the
cache cannot serve them), then the same files again ("cached": results and grid images from ``st.cache_data``; what
is left is the per-rerun work and the browser). Bytes: websocket frames + HTTP responses received after the upload
starts (Chrome DevTools Protocol), as in ``browser_latency.py``.

``--profile`` adds uploads of further distinct pictures under py-spy (``record -f raw``, not counted in the
medians) and prints where the server's Python time goes.

Usage::

    .venv/bin/python bench/image_latency.py                 # 1 warm-up + 5 cold + 5 cached (~1 min)
    .venv/bin/python bench/image_latency.py --profile       # and a py-spy profile of 5 more cold uploads
    .venv/bin/python bench/image_latency.py --longest 3000  # camera-sized uploads (3000 px longer side)
    .venv/bin/python bench/image_latency.py --image-size 448  # DINOv2 at 448 px (1,025 tokens)

Prints a Markdown table and a PASS/MISS line, and writes the raw numbers to ``bench/results/image_latency.json``.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    PAGE_COLLECT,
    PAGE_INIT,
    RESULTS,
    SERVER_ENV,
    UPLOAD,
    VIEWPORT,
    NetLog,
    PageError,
    children_cpu_seconds,
    cpu_seconds,
    environment,
    fmt_bytes,
    fmt_s,
    page_state,
    photo_variant,
    py_spy,
    server_log_tail,
    server_pid,
    shows_picture,
    stack_profile,
    summarize,
    wait_for_quiet_machine,
    wait_until,
)
from tests.browser import CHROMIUM, CHROMIUM_ARGS, chromium_missing_reason, streamlit_server  # noqa: E402

TARGET_S = {224: 1.5, 448: 3.0}
"""Upload → every overlay, by image size (px); other sizes are reported without a target."""
LOG = RESULTS / "streamlit_image.log"


def measure_upload(page, net: NetLog, path: Path, size: tuple[int, int], quiet_ms: int, timeout_s: float,
                   pid: int | None) -> dict:
    """Upload ``path``, wait until the page shows it; the timings (s) and bytes of that run."""
    before = page_state(page)
    page.evaluate("() => window.__bench.arm()")
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)))")
    net.reset()
    cpu0, browser0 = cpu_seconds(pid), children_cpu_seconds("chrom")
    page.evaluate("() => { window.__bench.click = performance.now(); }")
    page.locator(UPLOAD).set_input_files(str(path))
    wait_until(page, shows_picture(path.name, size, before["gridSrc"]), quiet_ms, timeout_s, script_state=True)
    cpu1, browser1 = cpu_seconds(pid), children_cpu_seconds("chrom")
    c = page.evaluate(PAGE_COLLECT)
    ms = 1e-3
    end_ms = max(c["lastMutation"], c["lastImgLoad"] or 0.0)
    media = [r for r in c["resources"] if "/media/" in r["name"]]
    upload = [r for r in c["resources"] if "/_stcore/upload_file" in r["name"]]
    return {
        "latency_s": end_ms * ms,
        "upload_sent_s": max(r["end"] for r in upload) * ms if upload else None,
        "last_mutation_s": c["lastMutation"] * ms,
        "last_img_load_s": c["lastImgLoad"] * ms if c["lastImgLoad"] is not None else None,
        "last_change_by_area_s": {k: v * ms for k, v in c["lastByKind"].items()},
        "ws_first_s": c["wsFirst"] * ms if c["wsFirst"] is not None else None,
        "ws_last_s": c["wsLast"] * ms if c["wsLast"] is not None else None,
        "media_end_s": max((r["end"] for r in media), default=0.0) * ms if media else None,
        "server_cpu_s": None if cpu0 is None or cpu1 is None else cpu1 - cpu0,
        "browser_cpu_s": None if browser0 is None or browser1 is None else browser1 - browser0,
        "longtask_s": c["longtaskMs"] * ms, "longtasks": c["longtasks"], "mutation_records": c["mutations"],
        "bytes": net.ws_bytes + net.http_bytes, "ws_bytes": net.ws_bytes, "ws_frames": net.ws_frames,
        "http_bytes": net.http_bytes, "http": net.http, "largest_ws_frame": c["wsLargest"],
        "media": [{"url": r["name"].rsplit("/", 1)[-1], "transfer": r["transferSize"], "body": r["encodedBodySize"],
                   "start_s": r["start"] * ms, "end_s": r["end"] * ms} for r in media],
    }


def bench(args, pictures: dict[str, list[tuple[Path, tuple[int, int]]]]) -> dict:
    """Serve the app, open the Image page, upload every picture of every phase in turn."""
    from playwright.sync_api import sync_playwright

    out: dict = {"phases": {}}
    with streamlit_server(LOG, extra_env=args.server_env, port=args.port) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        ctx = browser.new_context(viewport=VIEWPORT)
        ctx.add_init_script(PAGE_INIT)
        page = ctx.new_page()
        net = NetLog(ctx.new_cdp_session(page))
        pid = server_pid(url)
        t0 = time.perf_counter()
        page.goto(f"{url}/Image", wait_until="domcontentloaded")
        page.get_by_role("heading", name="Image attention").wait_for(timeout=120_000)
        wait_until(page, None, args.quiet_ms, 300, script_state=True)
        if args.image_size:  # the Resolution slider, one 14 px step per arrow key, before the first upload
            thumb = page.get_by_role("slider", name="Resolution (px)")
            thumb.focus()
            for _ in range((args.image_size - 224) // 14):
                page.keyboard.press("ArrowRight")
            wait_until(page, None, args.quiet_ms, 300, script_state=True)
            shown = thumb.get_attribute("aria-valuetext") or thumb.get_attribute("aria-valuenow")
            if shown != str(args.image_size):
                raise SystemExit(f"the Resolution slider shows {shown}, not {args.image_size}: "
                                 f"{thumb.evaluate('e => e.outerHTML.slice(0, 300)')}")
        out["first_load_s"] = time.perf_counter() - t0 - args.quiet_ms / 1000
        print(f"Image page loaded (first run incl. model load) in ~{out['first_load_s']:.1f} s", flush=True)
        for phase, items in pictures.items():
            runs: list[dict] = []
            spy = py_spy(pid, RESULTS / "image_latency.pyspy.txt") if phase == "profiled" else contextlib.nullcontext()
            with spy as raw:
                for path, size in items:
                    try:
                        r = measure_upload(page, net, path, size, args.quiet_ms, args.timeout, pid)
                    except (PageError, TimeoutError) as e:
                        print(f"  {phase} {path.name}: {e}\n  (server log: {server_log_tail(path=LOG)})", flush=True)
                        raise
                    r["file"], r["size"], r["file_bytes"] = path.name, size, path.stat().st_size
                    r["loadavg"] = os.getloadavg()[0]
                    runs.append(r)
                    print(f"  {phase:8s} {path.name:34s} {r['latency_s']:6.3f} s  {r['bytes'] / 1e6:5.2f} MB "
                          f"(ws {r['ws_bytes'] / 1e6:.2f} MB, http {r['http_bytes'] / 1e3:.0f} KB)  upload sent "
                          f"{fmt_s(r['upload_sent_s'])}  script done {fmt_s(r['ws_last_s'])}  server CPU "
                          f"{fmt_s(r['server_cpu_s'])}  browser CPU {fmt_s(r['browser_cpu_s'])}  long tasks "
                          f"{r['longtask_s']:.3f} s  load {r['loadavg']:.1f}",
                          flush=True)
            summary = summarize(runs)
            sent = [r["upload_sent_s"] for r in runs if r["upload_sent_s"] is not None]
            summary["upload_sent_s"] = statistics.median(sent) if sent else None
            out["phases"][phase] = {"runs": runs, "summary": summary}
            if raw is not None and raw.exists():
                out["profile"] = stack_profile(raw)
        page.screenshot(path=str(RESULTS / "image_page_last_run.png"), full_page=True)
        browser.close()
    return out


def report(data: dict) -> str:
    lines = ["| phase | Upload→all overlays visible (median, s) | bytes received | upload sent | first ws msg "
             "| last ws msg (script done) | server CPU | last image loaded | browser long tasks | ws bytes "
             "| http bytes | load avg |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for phase in ("cold", "cached"):
        p = data["phases"].get(phase)
        if not p or not p["summary"]:
            continue
        s = p["summary"]
        lines.append(f"| {phase} | {s['latency_s']:.3f} (n={s['n']}; {s['latency_min_s']:.3f}–"
                     f"{s['latency_max_s']:.3f}) | {fmt_bytes(s['bytes'])} | {fmt_s(s['upload_sent_s'])} "
                     f"| {fmt_s(s['ws_first_s'])} | {fmt_s(s['ws_last_s'])} | {fmt_s(s['server_cpu_s'])} "
                     f"| {fmt_s(s['last_img_load_s'])} | {fmt_s(s['longtask_s'])} | {fmt_bytes(s['ws_bytes'])} "
                     f"| {fmt_bytes(s['http_bytes'])} | {s['loadavg']:.1f} |")
    prof = data.get("profile")
    if prof and prof["samples"]:
        lines += ["", f"Server Python time during {len(data['phases']['profiled']['runs'])} profiled cold uploads "
                  f"(py-spy, {prof['samples']} samples; share of samples with the frame on the stack):", "",
                  "| frame | inclusive | | leaf frame | self |", "|---|---:|---|---|---:|"]
        for (fi, si), (fs, ss) in zip(prof["inclusive"], prof["self"], strict=False):
            lines.append(f"| `{fi}` | {si:.0%} | | `{fs}` | {ss:.0%} |")
    return "\n".join(lines)


def check_target(data: dict, size: int) -> str:
    lat = data["phases"]["cold"]["summary"]["latency_s"]
    target = TARGET_S.get(size)
    verdict = "n/a" if target is None else "PASS" if lat <= target else "MISS"
    return f"[{verdict}] Upload→all overlays visible at {size} px {lat:.3f} s ≤ {target or '–'} s (median)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reps", type=int, default=5, help="measured uploads of distinct pictures (after one warm-up)")
    ap.add_argument("--no-cached", dest="cached", action="store_false", help="skip uploading the same files again")
    ap.add_argument("--profile", action="store_true",
                    help="then upload --reps more distinct pictures under py-spy (not in the medians)")
    ap.add_argument("--longest", type=int, default=None,
                    help="resize the pictures to this longer side in pixels (default: as the examples, ~512)")
    ap.add_argument("--quiet-ms", type=int, default=1500, help="no mutation for this long = the page is idle")
    ap.add_argument("--timeout", type=float, default=180, help="seconds allowed for one upload")
    ap.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                    help=f"environment for the Streamlit server (repeatable); defaults: {SERVER_ENV}")
    ap.add_argument("--nice", type=int, default=0, help="run at this niceness (negative needs root)")
    ap.add_argument("--max-load", type=float, default=None,
                    help="first wait (up to 30 min) until the 1-minute load average is below this")
    ap.add_argument("--image-size", type=int, default=None, choices=range(224, 519, 14), metavar="PX",
                    help="the Image page's Resolution (224 to 518 px in steps of 14; default: the page's, 224)")
    ap.add_argument("--port", type=int, default=None, help="the server's port (default: a free one)")
    ap.add_argument("--out", type=Path, default=RESULTS / "image_latency.json")
    args = ap.parse_args(argv)
    args.server_env = {**SERVER_ENV, **dict(kv.split("=", 1) for kv in args.server_env)}
    if args.nice:
        os.nice(args.nice)
    wait_for_quiet_machine(args.max_load)
    reason = chromium_missing_reason()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="attnviz-bench-img-") as tmp:
        counter = iter(range(10_000))

        def make(label: str) -> tuple[Path, tuple[int, int]]:
            i = next(counter)
            path = Path(tmp) / f"bench-{i:02d}-{label}.jpg"
            return path, photo_variant(i, path, args.longest)

        cold = [make(f"rep{i}") for i in range(args.reps)]
        pictures = {"warm-up": [make("warm-up")], "cold": cold, "cached": cold if args.cached else [],
                    "profiled": [make(f"profile{i}") for i in range(args.reps)] if args.profile else []}
        data: dict = {"environment": environment(), "args": {k: str(v) for k, v in vars(args).items()},
                      "pictures": {ph: [(p.name, s) for p, s in items] for ph, items in pictures.items()}}
        print(f"{args.reps} pictures, e.g. {cold[0][0].name} {cold[0][1]}; load average "
              f"{data['environment']['loadavg_start']}", flush=True)
        data.update(bench(args, {k: v for k, v in pictures.items() if v}))
    data["environment"]["loadavg_end"] = os.getloadavg()
    data["target"] = check_target(data, args.image_size or 224)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1))

    print()
    print(report(data))
    print()
    print(data["target"])
    env = data["environment"]
    print(f"\nload average {', '.join(f'{x:.1f}' for x in env['loadavg_start'])} → "
          f"{', '.join(f'{x:.1f}' for x in env['loadavg_end'])} (1, 5, 15 min; other processes share the "
          f"{os.cpu_count()} cores); niceness {env['niceness']}; server env {args.server_env}; raw numbers in "
          f"{args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
