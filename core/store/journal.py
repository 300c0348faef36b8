"""The ledger's durable local journal: requests in flight, and rows the database has not taken.

Why a file and not the database: the journal exists for the moments the database is
away, so it must not need one. Why an append-only file and not a local SQLite file:
the gateway notes every request it admits here, on the event loop, before the first
upstream call; one ``os.write`` of a short line costs microseconds and takes no lock
another process could hold, where a SQLite commit would take the file's write lock and
could wait on another process. The file is small because it is compacted: when it
passes ``rotate_bytes`` the outstanding records are copied into a fresh file.

Each process owns one segment, ``<data>/journal/<pid>-<random>.journal``, and holds an
exclusive ``flock`` on it while it lives. The kernel drops that lock when the process
dies, however it dies (SIGKILL included), so another process, or the same deployment
restarted, *adopts* the dead segment: it copies the outstanding records into its own
segment and deletes the dead one.

One line per record, ``<kind> <request id> <json>``:

* ``open``: a request was admitted and is about to call upstream (its trace: who, which
  model, the worst-case cost). Written without fsync: it survives the process being
  killed (the data is in the kernel), not a power cut; the budget hold in the database
  is the trace that survives that.
* ``entry``: a finished request whose ledger rows and budget settlement could not be
  written to the database; the batch's lines are fsynced before the writer moves on.
* ``orphan``: an ``open`` adopted from a dead process: its outcome is unknown, so it is
  to become an ``interrupted`` ledger row with an estimated cost.
* ``done``: the request's rows are in the database (or its orphan was recorded).

A later record for an id replaces an earlier one. Replaying is safe to repeat: whoever
writes the rows checks the request id first (core/gateway/ledger_entry.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

log = logging.getLogger("switchboard.journal")

OPEN: Final = "open"
ENTRY: Final = "entry"
ORPHAN: Final = "orphan"
DONE: Final = "done"
SUFFIX: Final = ".journal"
ROTATE_BYTES: Final = 8 << 20

Record = tuple[str, dict[str, Any]]  # (request id, payload)


@dataclass(frozen=True, slots=True)
class Backlog:
    """What the journal still holds for the database."""

    entries: int  # finished requests whose rows wait for the database
    orphans: int  # dead processes' requests waiting to become `interrupted` rows
    in_flight: int  # this process's requests that have not finished yet

    @property
    def queued(self) -> int:
        return self.entries + self.orphans


def _line(kind: str, request_id: str, payload: Mapping[str, Any] | None = None) -> bytes:
    body = json.dumps(payload, separators=(",", ":")) if payload is not None else "{}"
    return f"{kind} {request_id} {body}\n".encode()


def parse(data: bytes) -> dict[str, tuple[str, bytes]]:
    """The outstanding records of a segment: request id -> (kind, line).

    A torn last line (the process died mid-write) or any other unreadable line is
    skipped: it cannot be trusted, and every line stands alone.
    """
    live: dict[str, tuple[str, bytes]] = {}
    for raw in data.splitlines(keepends=True):
        if not raw.endswith(b"\n"):
            continue
        kind, _, rest = raw.partition(b" ")
        request_id, _, body = rest.partition(b" ")
        try:
            name, rid = kind.decode(), request_id.decode()
            json.loads(body)
        except ValueError:
            continue
        if name == DONE:
            live.pop(rid, None)
        elif name in (OPEN, ENTRY, ORPHAN):
            live[rid] = (name, raw)
    return live


def _payload(line: bytes) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(line.split(b" ", 2)[2])
    return payload


def _as_orphan(kind: str, line: bytes) -> tuple[str, bytes]:
    """An adopted record: a dead process's `open` is now an orphan; the rest keep their kind."""
    if kind != OPEN:
        return kind, line
    return ORPHAN, ORPHAN.encode() + line[len(OPEN) :]


class Journal:
    """One process's segment. ``directory=None`` keeps the records in memory only."""

    def __init__(self, directory: Path | None, *, rotate_bytes: int = ROTATE_BYTES) -> None:
        self.directory = directory
        self._rotate_bytes = rotate_bytes
        self._lock = threading.Lock()
        self._live: dict[str, tuple[str, bytes]] = {}
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._torn = False
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self._fd, self._path = self._new_segment()

    # --- writing ------------------------------------------------------------------------

    def open(self, request_id: str, trace: Mapping[str, Any]) -> None:
        """Note an admitted request before its first upstream call (no fsync; see above)."""
        line = _line(OPEN, request_id, trace)
        with self._lock:
            self._append(line)
            self._live[request_id] = (OPEN, line)

    def park(self, records: Sequence[Record]) -> None:
        """Keep finished requests' rows the database did not take; durable on return."""
        if not records:
            return
        lines = [(rid, _line(ENTRY, rid, payload)) for rid, payload in records]
        with self._lock:
            self._append(b"".join(line for _, line in lines))
            self._sync()
            for rid, line in lines:
                self._live[rid] = (ENTRY, line)

    def resolve(self, request_ids: Iterable[str]) -> None:
        """These requests are in the database now: forget them (no fsync: a replay is safe)."""
        with self._lock:
            ids = [rid for rid in request_ids if rid in self._live]
            if not ids:
                return
            self._append(b"".join(_line(DONE, rid) for rid in ids))
            for rid in ids:
                del self._live[rid]
            if self._size > self._rotate_bytes:
                self._rotate()

    # --- reading ------------------------------------------------------------------------

    def pending(self, limit: int | None = 256) -> list[Record]:
        """Finished requests waiting for the database, oldest first."""
        return self._of_kind(ENTRY, limit)

    def orphans(self, limit: int | None = 256) -> list[Record]:
        """Dead processes' requests whose outcome is unknown, oldest first."""
        return self._of_kind(ORPHAN, limit)

    def backlog(self) -> Backlog:
        with self._lock:
            kinds = [kind for kind, _ in self._live.values()]
        return Backlog(kinds.count(ENTRY), kinds.count(ORPHAN), kinds.count(OPEN))

    def _of_kind(self, kind: str, limit: int | None) -> list[Record]:
        with self._lock:
            lines = [(rid, line) for rid, (k, line) in self._live.items() if k == kind]
        return [(rid, _payload(line)) for rid, line in lines[:limit]]

    # --- dead processes -----------------------------------------------------------------

    def adopt(self) -> int:
        """Take over the segments of processes that died; returns how many records came."""
        if self.directory is None:
            return 0
        adopted = 0
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            if path == self._path:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue  # another process adopted it first
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its owner is alive
                if os.fstat(fd).st_nlink == 0:
                    continue  # adopted and deleted while we waited to open it
                adopted += self._take(fd, path)
            finally:
                os.close(fd)
        return adopted

    def _take(self, fd: int, path: Path) -> int:
        with open(fd, "rb", closefd=False) as dead:
            records = parse(dead.read())
        with self._lock:
            moved = {rid: _as_orphan(kind, line) for rid, (kind, line) in records.items()}
            moved = {rid: rec for rid, rec in moved.items() if rid not in self._live}
            if moved:
                self._append(b"".join(line for _, line in moved.values()))
                self._sync()  # ours is durable before theirs is gone
                self._live.update(moved)
        path.unlink(missing_ok=True)
        if moved:
            log.warning("adopted %d ledger journal records from %s", len(moved), path.name)
        return len(moved)

    # --- the file -----------------------------------------------------------------------

    def _new_segment(self) -> tuple[int, Path]:
        assert self.directory is not None
        name = f"{os.getpid()}-{secrets.token_hex(6)}"
        # Locked before it gets the name adopters look for: never adoptable while ours.
        temp = self.directory / f"{name}.new"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path = self.directory / f"{name}{SUFFIX}"
        os.rename(temp, path)
        self._fsync_directory()
        return fd, path

    def _append(self, data: bytes) -> None:
        """Append to the segment; a full or failing disk is logged, never raised.

        The records stay in memory either way, so this process still replays them; only
        their survival of this process's death depends on the file.
        """
        if self._fd is None:
            return
        if self._torn:  # end the half-written line, or it would swallow this one
            data = b"\n" + data
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            self._torn = True
            log.error("the ledger journal %s could not be written: %s", self._path, exc)
            return
        self._torn = False
        self._size += len(data)

    def _sync(self) -> None:
        if self._fd is None:
            return
        try:
            os.fsync(self._fd)
        except OSError as exc:
            log.error("the ledger journal %s could not be synced: %s", self._path, exc)

    def _rotate(self) -> None:
        """Copy what is outstanding into a fresh segment, then drop the old one."""
        old_fd, old_path = self._fd, self._path
        if old_fd is None or old_path is None:
            return
        old_size = self._size
        try:
            self._fd, self._path = self._new_segment()
        except OSError as exc:
            log.error("the ledger journal could not start a new segment: %s", exc)
            return
        self._size = 0
        self._append(b"".join(line for _, line in self._live.values()))
        self._sync()
        if self._torn:  # the copy is incomplete: keep the old segment instead
            new_fd, new_path = self._fd, self._path
            self._fd, self._path, self._size, self._torn = old_fd, old_path, old_size, False
            new_path.unlink(missing_ok=True)
            os.close(new_fd)
            return
        old_path.unlink(missing_ok=True)
        os.close(old_fd)

    def _fsync_directory(self) -> None:
        assert self.directory is not None
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def close(self) -> None:
        """Release the segment: deleted when nothing is outstanding, else left for adoption."""
        with self._lock:
            fd, path = self._fd, self._path
            self._fd = None
            if fd is None or path is None:
                return
            outstanding = bool(self._live)
            if outstanding:
                with contextlib.suppress(OSError):
                    os.fsync(fd)
            else:
                path.unlink(missing_ok=True)
            os.close(fd)
        if outstanding:
            log.warning(
                "the ledger journal %s keeps %d records for the next start", path, len(self._live)
            )
