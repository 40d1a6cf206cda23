"""One shared model, many threads: each call gets exactly its own input's attention."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

TEXTS = ["The first input is short.",
         "A second, rather different input sentence with more words in it than the first."]


def test_concurrent_runs_match_sequential(minilm):
    expected = {t: minilm.run(text=t) for t in TEXTS}
    jobs = TEXTS * 8
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda t: (t, minilm.run(text=t)), jobs))
    for text, r in results:
        ref = expected[text]
        assert r.tokens == ref.tokens
        np.testing.assert_allclose(r.weights, ref.weights, atol=1e-6)


def test_at_most_two_model_runs_at_once():
    import threading
    import time

    from attnviz.web import runs

    active, peak, lock = [0], [0], threading.Lock()

    def work() -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1

    threads = [threading.Thread(target=runs.limited, args=(work,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == runs.MODEL_RUN_SLOTS == 2
