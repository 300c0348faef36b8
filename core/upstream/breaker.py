"""Circuit breakers per deployment (provider + model + key), judged by failure rate.

Closed: calls flow, and each call's verdict goes into a sliding window (the last
``window_calls`` calls within ``window_s``). Once the window holds at least
``min_calls`` calls and ``failure_rate`` of them failed, the breaker opens for
``cooldown_s``: calls skip the deployment at once. Then it is half-open: up to
``probes`` calls go through. It closes (with a fresh window) as soon as the probes'
failure rate can no longer reach the threshold, and opens again for another cooldown
if they all fail. This is the shape of resilience4j's breaker and Envoy's
failure-percentage outlier detection, rather than "N failures in a row": a provider
that answers one call in four is degraded, not down, and keeps its traffic; one that
answers nothing is skipped within a bounded number of calls (see BreakerPolicy).

Only the provider's own failures are recorded here (core/upstream/calls.py decides which);
everything else (the caller's stop, a request the provider or litellm rejected for its
content) releases a probe slot and leaves the window alone. State is per process: each
replica judges a deployment from its own calls.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core.clock import Clock, utc_now

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half-open"


@dataclass(frozen=True)
class BreakerPolicy:
    """When a deployment is skipped.

    At a true failure rate of 75% a window of 10 calls reaches 95% failures 6% of the
    time, one of 50 calls less than 0.01%: such a provider keeps its traffic. One that
    fails every call is skipped after 10 calls from a fresh start, and after at most 48
    (95% of the 50-call window) after a healthy spell; the window's 120 s cap makes that
    fewer when calls are sparse.
    """

    failure_rate: float = 0.95  # open at or above this share of failed calls in the window
    min_calls: int = 10  # never judge on fewer calls than this
    window_calls: int = 50  # the most recent calls judged
    window_s: float = 120.0  # ... and none older than this
    cooldown_s: float = 15.0  # how long an open breaker skips the deployment
    probes: int = 3  # calls let through while half-open

    def __post_init__(self) -> None:
        if not 0 < self.failure_rate <= 1:
            raise ValueError("failure_rate must be in (0, 1]")
        if self.min_calls < 1 or self.window_calls < self.min_calls or self.probes < 1:
            raise ValueError("need 1 <= min_calls <= window_calls and probes >= 1")

    def trips(self, calls: int, failures: int) -> bool:
        """Whether ``failures`` of ``calls`` is enough evidence to open."""
        return calls >= self.min_calls and failures >= self.failure_rate * calls


@dataclass(frozen=True)
class BreakerState:
    """One deployment's breaker as the settings pages show it."""

    deployment: str
    state: str  # closed | open | half-open
    calls: int  # calls in the window (closed), that opened it (open), probes answered
    failures: int  # of those, failed
    opened_at: datetime | None
    retry_at: datetime | None
    probes_in_flight: int = 0

    @property
    def failure_rate(self) -> float:
        return self.failures / self.calls if self.calls else 0.0


@dataclass
class _Entry:
    window: deque[tuple[datetime, bool]] = field(default_factory=deque)  # (at, failed)
    opened_at: datetime | None = None
    probes_in_flight: int = 0
    probe_ok: int = 0
    probe_failed: int = 0
    probes_started: int = 0
    tripped: tuple[int, int] = (0, 0)  # (calls, failures) that opened it last


class Breakers:
    def __init__(self, policy: BreakerPolicy | None = None, clock: Clock = utc_now) -> None:
        self.policy = policy or BreakerPolicy()
        self._cooldown = timedelta(seconds=self.policy.cooldown_s)
        self._window = timedelta(seconds=self.policy.window_s)
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        # Streamlit sessions and the API share one gateway across threads.
        self._lock = threading.Lock()

    def allow(self, deployment: str) -> bool:
        """May a call go to this deployment now? Half-open, this claims a probe slot,
        which the call's verdict (or ``release``) gives back."""
        with self._lock:
            entry = self._entries.get(deployment)
            if entry is None or entry.opened_at is None:
                return True
            if self._clock() < entry.opened_at + self._cooldown:
                return False
            if entry.probes_started >= self.policy.probes:
                return False
            entry.probes_started += 1
            entry.probes_in_flight += 1
            return True

    def record_success(self, deployment: str) -> None:
        self._record(deployment, failed=False)

    def record_failure(self, deployment: str) -> None:
        self._record(deployment, failed=True)

    def release(self, deployment: str) -> None:
        """A call that ended without a verdict on the provider (the caller stopped, the
        request itself was wrong, a budget refused it): its probe slot goes back."""
        with self._lock:
            entry = self._entries.get(deployment)
            if entry is not None and self._half_open(entry) and entry.probes_in_flight:
                entry.probes_in_flight -= 1
                entry.probes_started -= 1

    def states(self) -> list[BreakerState]:
        now = self._clock()
        with self._lock:
            return [self._state(name, e, now) for name, e in sorted(self._entries.items())]

    # --- internals ------------------------------------------------------------------

    def _half_open(self, entry: _Entry) -> bool:
        return entry.opened_at is not None and self._clock() >= entry.opened_at + self._cooldown

    def _record(self, deployment: str, *, failed: bool) -> None:
        now = self._clock()
        with self._lock:
            # Good calls count as much as bad ones: the rate is over every call.
            entry = self._entries.setdefault(deployment, _Entry())
            if entry.opened_at is None:
                self._judge_closed(entry, now, failed)
            elif now >= entry.opened_at + self._cooldown and entry.probes_in_flight:
                self._judge_probe(deployment, entry, failed, now)
            # Open, or no probe out: a call that began before the breaker opened says
            # nothing about the deployment now.

    def _judge_closed(self, entry: _Entry, now: datetime, failed: bool) -> None:
        window = entry.window
        window.append((now, failed))
        while window and (
            len(window) > self.policy.window_calls or window[0][0] < now - self._window
        ):
            window.popleft()
        failures = sum(1 for _, f in window if f)
        if self.policy.trips(len(window), failures):
            self._open(entry, now, (len(window), failures))

    def _judge_probe(self, deployment: str, entry: _Entry, failed: bool, now: datetime) -> None:
        entry.probes_in_flight -= 1
        if failed:
            entry.probe_failed += 1
        else:
            entry.probe_ok += 1
        probes = self.policy.probes
        # Close once even every outstanding probe failing could not reach the threshold.
        if entry.probe_failed + (probes - entry.probe_ok - entry.probe_failed) < (
            self.policy.failure_rate * probes
        ):
            fresh = _Entry()  # closed, with a fresh window that starts at this verdict
            fresh.window.append((now, failed))
            self._entries[deployment] = fresh
        elif entry.probe_ok + entry.probe_failed >= probes:
            self._open(entry, now, (entry.probe_ok + entry.probe_failed, entry.probe_failed))

    @staticmethod
    def _open(entry: _Entry, now: datetime, tripped: tuple[int, int]) -> None:
        entry.opened_at = now
        entry.tripped = tripped
        entry.window.clear()
        entry.probes_in_flight = entry.probe_ok = entry.probe_failed = entry.probes_started = 0

    def _state(self, name: str, entry: _Entry, now: datetime) -> BreakerState:
        if entry.opened_at is None:
            recent = [f for at, f in entry.window if at >= now - self._window]
            return BreakerState(name, CLOSED, len(recent), sum(recent), None, None)
        retry_at = entry.opened_at + self._cooldown
        if now < retry_at:
            calls, failures = entry.tripped
            return BreakerState(name, OPEN, calls, failures, entry.opened_at, retry_at)
        answered = entry.probe_ok + entry.probe_failed
        return BreakerState(
            name,
            HALF_OPEN,
            answered,
            entry.probe_failed,
            entry.opened_at,
            retry_at,
            entry.probes_in_flight,
        )
