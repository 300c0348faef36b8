"""A small thread-safe cache with a time-to-live, owned by whoever creates it.

The gateway keeps per-caller policy (routes, key lookups, limits, which budgets
apply) here for a couple of seconds so the request path does not query the
database for facts that change rarely; the counters that must be exact (budget
reservations, rate windows) are never cached.

When an entry expires under load, the concurrent misses for it share one load (the
first loads, the rest wait for it), so 32 busy clients cost one query, not 32.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class TtlCache(Generic[V]):
    def __init__(
        self,
        ttl_s: float,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[Hashable, tuple[float, V]] = {}
        self._loading: dict[Hashable, threading.Lock] = {}  # one gate per key being loaded
        self._lock = threading.Lock()

    def peek(self, key: Hashable) -> tuple[bool, V | None]:
        """(True, value) on a fresh hit, else (False, None); never loads."""
        hit = self._fresh(key)
        return (True, hit[1]) if hit is not None else (False, None)

    def _fresh(self, key: Hashable) -> tuple[float, V] | None:
        with self._lock:
            hit = self._entries.get(key)
        return hit if hit is not None and hit[0] > self._clock() else None

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()  # crude but bounded; entries are cheap to reload
            self._entries[key] = (self._clock() + self._ttl_s, value)

    def get_or_load(self, key: Hashable, load: Callable[[], V], *, wait: bool = True) -> V:
        """The fresh value, or one load shared with concurrent callers missing the same key.

        ``wait=False`` is for a caller that must not block (an event loop) and whose load
        fails at once without the database: it loads on its own rather than wait.
        """
        if (hit := self._fresh(key)) is not None:
            return hit[1]
        with self._lock:
            gate = self._loading.setdefault(key, threading.Lock())
        if not gate.acquire(blocking=wait):
            return self._load(key, load)
        try:
            hit = self._fresh(key)  # loaded by the caller we waited for
            return hit[1] if hit is not None else self._load(key, load)
        finally:
            gate.release()
            with self._lock:
                if self._loading.get(key) is gate:
                    del self._loading[key]

    def _load(self, key: Hashable, load: Callable[[], V]) -> V:
        value = load()  # outside the lock: loads may touch the database
        self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
