"""Running the real app and a real browser (Debian Chromium via Playwright) for tests and benchmarks."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("ATTNVIZ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_missing_reason() -> str | None:
    """Why browser tests cannot run here, or None when they can."""
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"Debian chromium not found at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install -r requirements-dev.txt)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(log_path: Path | None = None, extra_env: dict | None = None,
                     app: Path = ROOT / "app.py", port: int | None = None) -> Iterator[str]:
    """Start ``streamlit run app`` (the project's ``app.py`` by default) on loopback port ``port`` (a free one by
    default), from the project root (its ``.streamlit/config.toml`` applies); yield its base URL; stop it
    afterwards. A ``PYTHONPATH`` in ``extra_env`` goes after the project root."""
    port = port or free_port()
    log = open(log_path or os.devnull, "w")
    extra_env = dict(extra_env or {})
    paths = (str(ROOT), extra_env.pop("PYTHONPATH", ""), os.environ.get("PYTHONPATH", ""))
    env = {**os.environ, **extra_env, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=1).read().strip() == b"ok":
                    break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"streamlit did not start (exit {proc.poll()})") from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def wait_idle(page, timeout_ms: int = 120_000) -> None:
    """Wait until Streamlit has finished running the script: its run state (``data-test-script-state`` on the
    app root) is neither running nor about to rerun, and no spinner shows. The status widget is not enough:
    ``toolbarMode = "minimal"`` hides it, and a page can sit between a spinner and its last elements."""
    page.wait_for_function(
        "() => { const app = document.querySelector('[data-test-script-state]');"
        " const state = app ? app.getAttribute('data-test-script-state') : null;"
        " return state !== 'running' && state !== 'rerunRequested'"
        " && !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && !document.querySelector('[data-testid=\"stSpinner\"]'); }", timeout=timeout_ms)


def wait_image_loaded(page, locator, timeout_ms: int = 60_000) -> None:
    """Wait until the ``<img>`` behind ``locator`` has been fetched and decoded (not merely inserted)."""
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=locator.element_handle(),
                           timeout=timeout_ms)


def assert_inert(page, dialogs: list[str]) -> None:
    assert dialogs == []
    assert page.locator('img[src="x"]').count() == 0
    assert page.evaluate("() => [...document.scripts].some(s => s.textContent.includes('alert(2)'))") is False
    assert page.locator('a[href^="javascript:"]').count() == 0
    assert page.locator('[data-testid="stException"]').count() == 0


def full_page_shot(page, path) -> None:
    """Screenshot the whole page: Streamlit scrolls inside its own container, so grow the viewport to fit it."""
    height = page.evaluate("() => document.querySelector('[data-testid=stMainBlockContainer]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": min(int(height) + 200, 16_000)})
    page.wait_for_timeout(500)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})
