"""Server memory: a page run must not keep attention results alive beyond the shared, bounded cache.

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
import io

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from attnviz.result import AttentionResult
from attnviz.server import allocator
from attnviz.web import runs
from attnviz.web.image import VIEWS as IMAGE_VIEWS
from attnviz.web.text import VIEWS
from tests.text_app import ROOT, TIMEOUT, submit, text_page


def results_left(at: AppTest) -> int:
    """AttentionResults still alive once the result cache is emptied (``at``, the session, is kept alive)."""
    assert not at.exception and not at.error
    runs.RESULTS.clear()
    gc.collect()
    return sum(type(o) is AttentionResult for o in gc.get_objects())


@pytest.mark.parametrize("view", [v.LABEL for v in VIEWS])
def test_text_page_keeps_no_result(view):
    at = text_page(text_view=view).run()
    submit(at, "A second sentence, so the first result is no longer the current one.")
    assert results_left(at) == 0


def test_image_page_keeps_no_result():
    assert IMAGE_VIEWS  # every section runs on the page, each with its downloads
    at = AppTest.from_file(str(ROOT / "pages/2_Image.py"), default_timeout=TIMEOUT).run()
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, format="PNG")
    at.file_uploader(key="image_upload").set_value(("red.png", buf.getvalue(), "image/png"))
    at.run()
    assert results_left(at) == 0


def test_compare_page_keeps_no_result():
    at = AppTest.from_file(str(ROOT / "pages/4_Compare.py"), default_timeout=TIMEOUT).run()
    assert results_left(at) == 0


def test_cross_attention_page_keeps_no_result():
    at = AppTest.from_file(str(ROOT / "pages/5_Cross_Attention.py"), default_timeout=TIMEOUT).run()
    assert results_left(at) == 0


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_heap_settings_apply_on_linux():
    assert allocator.limit_heap_growth() is True


def test_a_model_run_reuses_freed_buffers_and_the_last_one_gives_them_back():
    """Buffers under the mmap threshold (a layer's 12.6 MB at 512 tokens) stay in the heap while runs go on, so
    the next layer or run reuses their pages; when the last run of a burst ends they go back to the OS."""
    import numpy as np

    assert allocator.limit_heap_growth() is True
    size = 12 * 2**20

    def run() -> int:
        for _ in range(4):  # made and freed as a forward pass does, layer after layer
            buffer = np.ones(size // 4, np.float32)
            del buffer
        return resident_bytes()

    allocator.release_free_heap()  # free heap left resident by earlier tests would serve the buffer unseen
    before = resident_bytes()
    during = runs.limited(run)
    after = resident_bytes()
    assert during - before >= size * 3 // 4  # the freed buffer stayed for the next one
    assert after - before < size // 4       # and left with the run


def test_the_heap_goes_back_only_when_the_last_overlapping_run_ends():
    import numpy as np

    assert allocator.limit_heap_growth() is True
    size = 12 * 2**20
    allocator.release_free_heap()
    before = resident_bytes()
    with allocator.burst():          # a run still going on (or waiting for a slot)
        with allocator.burst():      # another one, ending first
            buffer = np.ones(size // 4, np.float32)
            del buffer
        assert resident_bytes() - before >= size * 3 // 4  # kept for the run still going on
    assert resident_bytes() - before < size // 4
