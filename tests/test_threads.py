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
