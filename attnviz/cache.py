"""A thread-safe, process-wide LRU cache bounded by bytes and age, for results shared read-only by sessions.

Streamlit's ``st.cache_data`` pickles a copy per hit and bounds only the entry count; one 512-token SmolLM2 result
holds 283 MB of weights, so results are kept here instead, bounded by their size, and handed out without copying.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
V = TypeVar("V")


class BoundedCache(Generic[V]):
    """LRU of at most ``max_bytes`` (as measured by ``sizeof``) whose entries expire after ``ttl_s`` seconds.

    A value larger than ``max_bytes`` is kept alone: every other entry is evicted, and it goes at the next put (a
    long input's result stays while its person looks at it, and never shares the memory with others' results).
    Concurrent misses on one key compute it once.
    """

    def __init__(self, max_bytes: int, ttl_s: float, sizeof: Callable[[V], int]) -> None:
        self.max_bytes, self.ttl_s, self._sizeof = max_bytes, ttl_s, sizeof
        self._items: OrderedDict[Hashable, tuple[float, int, V]] = OrderedDict()
        self._lock = threading.Lock()
        self._pending: dict[Hashable, threading.Lock] = {}
        self.bytes = 0

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The cached value of ``key``, or ``compute()`` (kept if it fits). Exceptions are not cached."""
        hit = self._get(key)
        if hit is not None:
            return hit[0]
        with self._lock:
            pending = self._pending.setdefault(key, threading.Lock())
        with pending:
            hit = self._get(key)
            if hit is not None:
                return hit[0]
            try:
                value = compute()
                self._put(key, value)
            finally:
                with self._lock:
                    self._pending.pop(key, None)
        return value

    def get(self, key: Hashable) -> V | None:
        """The cached value of ``key``, or None (nothing is computed)."""
        hit = self._get(key)
        return None if hit is None else hit[0]

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.bytes = 0

    def _get(self, key: Hashable) -> tuple[V] | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            born, size, value = item
            if time.monotonic() - born > self.ttl_s:
                del self._items[key]
                self.bytes -= size
                return None
            self._items.move_to_end(key)
            return (value,)

    def _put(self, key: Hashable, value: V) -> None:
        size = int(self._sizeof(value))
        if size > self.max_bytes:
            log.info("caching a %d-byte value alone (limit %d)", size, self.max_bytes)
        with self._lock:
            if key in self._items:
                self.bytes -= self._items.pop(key)[1]
            self._items[key] = (time.monotonic(), size, value)
            self.bytes += size
            while self.bytes > self.max_bytes and len(self._items) > 1:
                _, (_, old, _) = self._items.popitem(last=False)
                self.bytes -= old
