"""attnviz.models.threads: short work computes on one thread and puts back the thread count it found (also when it
fails); long work keeps torch's count as it is (a Ray actor's one thread, a server's every core)."""
from __future__ import annotations

import pytest
import torch

from attnviz.models import threads


@pytest.mark.parametrize("short", [True, False])
def test_work_sets_its_threads_and_puts_back_what_it_found(short):
    before = torch.get_num_threads()
    with threads.run_threads(short):
        inside = torch.get_num_threads()
    assert inside == (threads.SHORT_THREADS if short else before)
    assert torch.get_num_threads() == before


def test_work_puts_back_the_count_when_it_fails():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), threads.run_threads(True):
        raise RuntimeError("the model failed")
    assert torch.get_num_threads() == before


def test_a_short_result_computes_its_heads_on_one_thread(monkeypatch):
    """CapturedHeads' methods run inside run_threads, short for up to SHORT_KEYS keys."""
    import numpy as np

    from attnviz.models.heads import CapturedHeads

    seen = []
    monkeypatch.setattr(torch, "set_num_threads", lambda n, real=torch.set_num_threads: (seen.append(n), real(n)))
    rng = np.random.default_rng(0)
    for n in (8, threads.SHORT_KEYS + 1):
        q, k = rng.standard_normal((1, 2, n, 4), dtype=np.float32), rng.standard_normal((1, 2, n, 4), dtype=np.float32)
        lo, hi = np.zeros((1, n), np.int32), np.full((1, n), n, np.int32)
        seen.clear()
        CapturedHeads(q, k, [0.5], lo, hi).rows(0, 1, 0, 2)
        assert seen == ([threads.SHORT_THREADS, torch.get_num_threads()] if n <= threads.SHORT_KEYS else [])


@pytest.fixture
def slots():
    """Set the process's work slots for one test (the server's pages set 2 when imported)."""
    before = threads._slots, threads._around
    yield threads.limit_work
    threads._slots, threads._around = before


@pytest.fixture
def two_slots(slots):
    slots(2)


def at_most(n_threads: int, work) -> int:
    """The most bodies of ``work`` (called with a marker context manager) running at once over ``n_threads``."""
    import threading
    import time
    from contextlib import contextmanager

    lock, active, peak = threading.Lock(), [0], [0]

    @contextmanager
    def busy():
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        yield
        with lock:
            active[0] -= 1

    pool = [threading.Thread(target=work, args=(busy,)) for _ in range(n_threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return peak[0]


def test_without_a_limit_work_does_not_wait(slots):
    slots(None)  # a library user's process

    def work(busy):
        with threads.work_slot(), busy():
            pass
    assert at_most(4, work) == 4


def test_work_slots_bound_the_work_at_once_and_a_holder_takes_no_second(two_slots):
    def work(busy):
        with threads.work_slot(), threads.work_slot(), busy():  # a model run making its overview: one slot
            pass

    assert at_most(6, work) == 2


def test_each_slot_waits_and_works_inside_the_context_the_server_gives(slots):
    """The server's ``around`` (its heap's burst) covers a slot's wait and work, once however deep the slots nest."""
    from contextlib import contextmanager

    events = []

    @contextmanager
    def around():
        events.append("enter")
        yield
        events.append("exit")

    slots(1, around=around)
    with threads.work_slot():
        with threads.work_slot():  # a model run making its overview: inside the same slot and burst
            assert events == ["enter"]
    assert events == ["enter", "exit"]


def test_heads_computed_from_a_result_take_a_work_slot(two_slots, monkeypatch):
    """Eight sessions computing heads at once: two at a time, as model runs (a run's overview inside its slot)."""
    import numpy as np

    from attnviz.models import heads

    rng = np.random.default_rng(0)
    q, k = rng.standard_normal((1, 2, 8, 4), dtype=np.float32), rng.standard_normal((1, 2, 8, 4), dtype=np.float32)
    source = heads.CapturedHeads(q, k, [0.5], np.zeros((1, 8), np.int32), np.full((1, 8), 8, np.int32))

    def work(busy):
        monkeypatch.setattr(heads, "run_threads", lambda short: busy())
        source.overview(4)

    assert at_most(8, work) == 2
