"""A batched background writer for the ledger, so requests never wait on the database.

Requests hand their rows to ``submit`` (non-blocking); one thread writes them in
batches, each batch in one transaction. ``flush`` waits until everything
submitted so far is written; ``close`` flushes and stops, so a graceful shutdown
loses nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from sqlalchemy.orm import Session, sessionmaker

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
    ) -> None:
        self._sessions = sessions
        self._write = write
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
        for attempt in range(3):
            try:
                with self._sessions.begin() as session:
                    self._write(session, batch)
                return
            except Exception as exc:
                name = type(exc).__name__
                log.warning("ledger batch write failed (%s), try %d", name, attempt + 1)
                time.sleep(0.05 * (attempt + 1))
        # One bad row must not take the rest of its batch with it.
        for item in batch:
            try:
                with self._sessions.begin() as session:
                    self._write(session, [item])
            except Exception as exc:
                log.error("ledger row could not be written: %s", type(exc).__name__)
