"""A small thread-safe cache with a time-to-live, owned by whoever creates it.

The gateway keeps per-caller policy (routes, key lookups, limits, which budgets
apply) here for a couple of seconds so the request path does not query the
database for facts that change rarely; the counters that must be exact (budget
reservations, rate windows) are never cached.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class TtlCache(Generic[V]):
    def __init__(
        self, ttl_s: float, *, max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[Hashable, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def peek(self, key: Hashable) -> tuple[bool, V | None]:
        """(True, value) on a fresh hit, else (False, None); never loads."""
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] > self._clock():
                return True, hit[1]
        return False, None

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()  # crude but bounded; entries are cheap to reload
            self._entries[key] = (self._clock() + self._ttl_s, value)

    def get_or_load(self, key: Hashable, load: Callable[[], V]) -> V:
        now = self._clock()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        value = load()  # outside the lock: loads may touch the database
        self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
