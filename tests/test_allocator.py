"""attnviz.server.allocator: the heap keeps freed buffers while model runs go on and gives them back when the
last run of a burst ends (glibc)."""
from __future__ import annotations

from attnviz.server import allocator
from attnviz.web import runs


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
