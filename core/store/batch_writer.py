"""A batched background writer for the ledger, so requests never wait on the database.

Requests hand their rows to ``submit`` (non-blocking); one thread writes them in
batches, each batch in one transaction. ``flush`` waits until everything
submitted so far is handled; ``close`` flushes and stops, so a graceful shutdown
loses nothing.

Nothing is dropped: a batch the database does not take (it is down, hung, full or
locked) goes to ``on_failed``, which keeps it in the durable journal for replay
(core/store/journal.py); ``on_written`` hears of every batch that committed. One bad
row is written apart from its batch, so it cannot hold the rest back.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from core.store.db import is_unavailable

log = logging.getLogger("switchboard.recorder")

T = TypeVar("T")
_STOP = object()


class BatchWriter(Generic[T]):
    def __init__(
        self,
        sessions: sessionmaker[Session],
        write: Callable[[Session, list[T]], None],
        *,
        max_batch: int = 256,
        max_delay_s: float = 0.1,
        name: str = "switchboard-ledger",
        on_written: Callable[[list[T]], None] | None = None,
        on_failed: Callable[[list[T]], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._write = write
        self._on_written = on_written or (lambda items: None)
        self._on_failed = on_failed or _log_lost
        self._max_batch = max_batch
        self._max_delay_s = max_delay_s
        self._queue: queue.Queue[object] = queue.Queue()
        self._done = threading.Condition()
        self._submitted = 0
        self._written = 0
        self._closed = False
        self._hurry = threading.Event()  # flush or close: write now, skip the batching delay
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> None:
        with self._done:
            if self._closed:
                raise RuntimeError("the ledger writer is closed")
            self._submitted += 1
        self._queue.put(item)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every item submitted before this call is written. False on timeout."""
        self._hurry.set()
        with self._done:
            target = self._submitted
            return self._done.wait_for(lambda: self._written >= target, timeout_s)

    def close(self, timeout_s: float = 30.0) -> None:
        with self._done:
            if self._closed:
                return
            self._closed = True
        self._queue.put(_STOP)
        self._hurry.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            # Let the batch fill while asleep, rather than waking for every item: each
            # wake takes the GIL from the event loop that is serving requests.
            self._hurry.wait(self._max_delay_s)
            self._hurry.clear()
            batch: list[T] = [first]  # type: ignore[list-item]
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)  # type: ignore[arg-type]
            self._write_with_retries(batch)
            with self._done:
                self._written += len(batch)
                self._done.notify_all()

    def _write_with_retries(self, batch: list[T]) -> None:
        failure: Exception | None = None
        for attempt in range(3):
            failure = self._try_write(batch)
            if failure is None:
                self._on_written(batch)
                return
            log.warning(
                "ledger batch write failed (%s), try %d", type(failure).__name__, attempt + 1
            )
            time.sleep(0.05 * (attempt + 1))
        if failure is not None and is_unavailable(failure):
            self._hand_off(batch)  # the database is away: row by row would only wait longer
            return
        # One bad row must not take the rest of its batch with it.
        written: list[T] = []
        failed: list[T] = []
        for item in batch:
            (written if self._try_write([item]) is None else failed).append(item)
        if written:
            self._on_written(written)
        if failed:
            self._hand_off(failed)

    def _try_write(self, items: list[T]) -> Exception | None:
        try:
            with self._sessions.begin() as session:
                self._write(session, items)
        except Exception as exc:
            return exc
        return None

    def _hand_off(self, items: list[T]) -> None:
        try:
            self._on_failed(items)
        except Exception as exc:  # the writer thread must live on
            log.error("%d ledger rows could not be kept: %s", len(items), type(exc).__name__)


def _log_lost(items: Sequence[object]) -> None:
    log.error("%d ledger rows could not be written and have no journal", len(items))
