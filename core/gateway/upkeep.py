"""The ledger's background upkeep: replay the journal, record orphans, charge expired holds.

One thread per gateway, on its own schedule, so none of this waits for the next request:

* every ``replay_interval_s`` while the journal holds anything: write the finished
  requests it kept (:func:`core.gateway.ledger_entry.write_entries`), then turn dead
  processes' unfinished requests into ``interrupted`` rows (core/money/orphans.py);
  the database being away only means trying again later, backing off to ``max_backoff_s``;
* every ``sweep_interval_s``: adopt the journal segments of processes that died, and
  charge budget holds past their expiry as interrupted requests.

``run_once`` does one round in the caller's thread; tests and shutdown call it directly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from core.gateway.ledger_entry import LedgerEntry, from_payload, orphan_from, write_entries
from core.money import orphans
from core.store.db import is_unavailable
from core.store.journal import Journal

log = logging.getLogger("switchboard.recorder")
BATCH = 256


@dataclass(frozen=True)
class UpkeepSettings:
    replay_interval_s: float = 1.0
    max_backoff_s: float = 15.0
    sweep_interval_s: float = 30.0


@dataclass
class Round:
    """What one round did."""

    replayed: int = 0
    interrupted: int = 0
    expired: int = 0
    adopted: int = 0
    failed: bool = False


class LedgerUpkeep:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        journal: Journal,
        clock: Clock,
        settings: UpkeepSettings | None = None,
    ) -> None:
        self._sessions = sessions
        self._journal = journal
        self._clock = clock
        self.settings = settings or UpkeepSettings()
        self._stop = threading.Event()
        self._wake = threading.Event()  # set when the journal gets work, or to stop
        self._round_lock = threading.Lock()  # the thread and a direct call never overlap
        self._next_sweep = time.monotonic() + self.settings.sweep_interval_s
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="switchboard-upkeep", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Rows were just parked in the journal: start replaying now, not after a long wait."""
        self._wake.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        self._journal.adopt()  # at start: a restart picks up what the last run left
        backoff = self.settings.replay_interval_s
        while not self._stop.is_set():
            done = self.run_once()
            if done.failed:
                backoff = min(backoff * 2, self.settings.max_backoff_s)
            else:
                backoff = self.settings.replay_interval_s
            wait = backoff if self._journal.backlog().queued else self._until_sweep()
            self._wake.wait(max(0.05, min(wait, self._until_sweep())))
            self._wake.clear()

    def _until_sweep(self) -> float:
        return self._next_sweep - time.monotonic()

    def run_once(self, *, sweep: bool = False, wait_s: float = -1) -> Round:
        """One round; ``sweep`` forces adoption and the expiry sweep now.

        ``wait_s``: how long to wait for a round already running (the thread's, stuck on
        a hung database perhaps); -1 waits as long as it takes.
        """
        if not self._round_lock.acquire(timeout=wait_s):
            return Round(failed=True)
        try:
            done = Round()
            if sweep or time.monotonic() >= self._next_sweep:
                self._next_sweep = time.monotonic() + self.settings.sweep_interval_s
                done.adopted = self._journal.adopt()
                done.expired = self._guard(done, self._sweep)
            done.replayed = self._guard(done, self._replay)
            done.interrupted = self._guard(done, self._record_orphans)
            return done
        finally:
            self._round_lock.release()

    def _guard(self, done: Round, step: Callable[[datetime], int]) -> int:
        try:
            return step(self._clock())
        except Exception as exc:  # the database is away, or one record is bad: try later
            done.failed = True
            log.warning("ledger upkeep: %s failed (%s)", step.__name__, type(exc).__name__)
            return 0

    def _replay(self, now: datetime) -> int:
        """One pass over what the journal kept; a row the database refuses stays for later."""
        queued = self._journal.pending(limit=None)
        replayed = 0
        for start in range(0, len(queued), BATCH):
            batch = queued[start : start + BATCH]
            entries = [from_payload(rid, payload) for rid, payload in batch]
            try:
                self._write(entries, now)
                replayed += len(batch)
            except Exception as exc:
                if is_unavailable(exc):
                    raise
                for entry in entries:  # a bad row must not hold the rest back
                    try:
                        self._write([entry], now)
                        replayed += 1
                    except Exception as one:
                        if is_unavailable(one):
                            raise
                        log.error(
                            "journal row %s could not be written (%s); kept for later",
                            entry.request_id,
                            type(one).__name__,
                        )
        if replayed:
            log.warning("replayed %d ledger rows from the journal", replayed)
        return replayed

    def _write(self, entries: list[LedgerEntry], now: datetime) -> None:
        with self._sessions.begin() as session:
            write_entries(session, entries, now)
        self._journal.resolve(e.request_id for e in entries)

    def _record_orphans(self, now: datetime) -> int:
        recorded = 0
        while batch := self._journal.orphans(BATCH):
            with self._sessions.begin() as session:
                recorded += orphans.interrupt(
                    session, [orphan_from(rid, trace) for rid, trace in batch], now
                )
            self._journal.resolve(rid for rid, _ in batch)
        if recorded:
            log.warning("recorded %d interrupted requests from a stopped process", recorded)
        return recorded

    def _sweep(self, now: datetime) -> int:
        return orphans.expire_due(self._sessions, now)
