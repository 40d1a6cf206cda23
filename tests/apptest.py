"""Driving the pages through Streamlit's AppTest: open a page's entry file, press a button, read the error a failed
model load shows, and count the results a session keeps.

Streamlit keeps objects of a session's last run after the run ends: widget serialisers (which hold ``format_func``
and with it the page module's globals), lazy download callables, and the last page module as ``__main__`` (and,
once, as ``__mp_main__``). If they reach an ``AttentionResult`` it outlives the byte bound of
:data:`attnviz.web.runs.RESULTS`, once per session (measured: 24 such results, 1.7 GB, with 8 sessions in
``bench/load.py``). So pages keep their results in ``main()``'s locals and download callables name the run
(:class:`attnviz.web.runs.TextRun`) instead of holding it. Each test runs a page, empties the result cache and counts
what is left.
"""
from __future__ import annotations

import gc
from pathlib import Path

from streamlit.testing.v1 import AppTest

from attnviz.result import AttentionResult
from attnviz.web import runs
from tests.shown import plain

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 240


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / name), default_timeout=TIMEOUT)


def click(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click()
    return at.run()


def load_error(at: AppTest, name: str) -> str:
    """The one error shown for a model that failed to load (and no traceback)."""
    assert not at.exception
    errors = [plain(e.value) for e in at.error if f"'{name}' could not be loaded" in plain(e.value)]
    assert errors, [e.value for e in at.error]
    return errors[0]


def results_left(at: AppTest) -> int:
    """AttentionResults still alive once the result cache is emptied (``at``, the session, is kept alive)."""
    assert not at.exception and not at.error
    runs.RESULTS.clear()
    gc.collect()
    return sum(type(o) is AttentionResult for o in gc.get_objects())
