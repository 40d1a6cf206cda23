"""The byte-bounded result cache: LRU order, size bound, expiry, one computation per key."""
from __future__ import annotations

import threading
import time

import pytest

from attnviz.cache import BoundedCache


def test_lru_evicts_by_bytes():
    c = BoundedCache(max_bytes=10, ttl_s=60, sizeof=len)
    for key in "abc":
        c.get_or_compute(key, lambda k=key: k * 4)  # 4 bytes each
    assert len(c) == 2 and c.bytes == 8  # "a" was evicted
    calls = []
    assert c.get_or_compute("a", lambda: calls.append(1) or "aaaa") == "aaaa" and calls == [1]
    c.get_or_compute("big", lambda: "x" * 11)  # larger than the bound: kept alone
    assert list(c._items) == ["big"] and c.bytes == 11
    assert c.get_or_compute("big", lambda: calls.append(2) or "y") == "x" * 11 and calls == [1]
    c.get_or_compute("d", lambda: "dddd")  # the next value evicts it
    assert list(c._items) == ["d"] and c.bytes == 4


def test_entries_expire():
    c = BoundedCache(max_bytes=100, ttl_s=0.05, sizeof=len)
    c.get_or_compute("k", lambda: "v")
    assert c.get("k") == "v" and c.get("other") is None  # get never computes
    time.sleep(0.1)
    assert c.get("k") is None
    assert c.get_or_compute("k", lambda: "new") == "new"


def test_errors_are_not_cached():
    c = BoundedCache(max_bytes=100, ttl_s=60, sizeof=len)
    with pytest.raises(ValueError):
        c.get_or_compute("k", lambda: (_ for _ in ()).throw(ValueError("bad")))
    assert c.get_or_compute("k", lambda: "ok") == "ok"


def test_concurrent_misses_compute_once():
    c = BoundedCache(max_bytes=100, ttl_s=60, sizeof=len)
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.1)
        return "v"

    threads = [threading.Thread(target=c.get_or_compute, args=("k", slow)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1]
