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
