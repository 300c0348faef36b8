"""Circuit breakers per deployment (provider + model + key).

Closed: calls flow. After ``threshold`` consecutive failures it opens for
``cooldown``; calls skip it at once. After the cooldown exactly one probe goes
through (half-open); success closes it, failure re-opens it for another cooldown.
State is per process: each replica learns about an outage on its own.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.clock import Clock, utc_now


@dataclass(frozen=True)
class BreakerState:
    deployment: str
    state: str  # closed | open | half-open
    consecutive_failures: int
    opened_at: datetime | None
    retry_at: datetime | None


@dataclass
class _Entry:
    failures: int = 0
    opened_at: datetime | None = None
    probing: bool = False


class Breakers:
    def __init__(
        self,
        threshold: int = 3,
        cooldown: timedelta = timedelta(seconds=15),
        clock: Clock = utc_now,
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        # Streamlit sessions and the API share one gateway across threads.
        self._lock = threading.Lock()

    def allow(self, deployment: str) -> bool:
        """May a call go to this deployment now? Claims the single probe when half-open."""
        with self._lock:
            entry = self._entries.get(deployment)
            if entry is None or entry.opened_at is None:
                return True
            if self._clock() < entry.opened_at + self.cooldown or entry.probing:
                return False
            entry.probing = True
            return True

    def record_success(self, deployment: str) -> None:
        with self._lock:
            self._entries.pop(deployment, None)

    def record_failure(self, deployment: str) -> None:
        with self._lock:
            entry = self._entries.setdefault(deployment, _Entry())
            entry.failures += 1
            if entry.probing or entry.failures >= self.threshold:
                entry.opened_at = self._clock()
                entry.probing = False

    def release_probe(self, deployment: str) -> None:
        """A probe that ended without a verdict (e.g. the caller left) frees the slot."""
        with self._lock:
            entry = self._entries.get(deployment)
            if entry is not None:
                entry.probing = False

    def states(self) -> list[BreakerState]:
        now = self._clock()
        with self._lock:
            return [self._state(name, e, now) for name, e in sorted(self._entries.items())]

    def _state(self, name: str, entry: _Entry, now: datetime) -> BreakerState:
        if entry.opened_at is None:
            return BreakerState(name, "closed", entry.failures, None, None)
        retry_at = entry.opened_at + self.cooldown
        state = "open" if now < retry_at else "half-open"
        return BreakerState(name, state, entry.failures, entry.opened_at, retry_at)
