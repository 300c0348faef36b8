"""core/store/journal.py: the ledger's local journal, on real files, with a real dead process.

A process that dies is a real one here: a child Python writes records and SIGKILLs
itself, so the flock its segment held is released by the kernel, exactly as in a crash.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from core.store.journal import SUFFIX, Journal, parse

PROJECT = Path(__file__).resolve().parent.parent


def _die_after(directory: Path, body: str) -> None:
    """Run ``body`` in a child process with journal ``j`` open on ``directory``, then SIGKILL it."""
    script = (
        textwrap.dedent(
            f"""
        import os, signal
        from pathlib import Path
        from core.store.journal import Journal
        j = Journal(Path({str(directory)!r}))
        """
        )
        + textwrap.dedent(body)
        + "\nos.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, timeout=60, check=False)
    assert done.returncode == -9, done


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SUFFIX}"))


def test_records_are_kept_until_resolved_and_a_later_record_replaces_an_earlier(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path)
    journal.open("r1", {"user_id": 1, "estimate_micros": 500})
    journal.open("r2", {"user_id": 1, "estimate_micros": 700})
    journal.park([("r1", {"request": {"id": "r1"}, "spend": {"openai": 42}})])
    journal.park([("r3", {"request": {"id": "r3"}})])  # a refusal: never opened
    assert journal.backlog().entries == 2 and journal.backlog().in_flight == 1
    assert [rid for rid, _ in journal.pending()] == ["r1", "r3"]
    assert journal.pending()[0][1]["spend"] == {"openai": 42}
    journal.resolve(["r1", "r2", "unknown"])
    assert [rid for rid, _ in journal.pending()] == ["r3"]
    assert journal.backlog().in_flight == 0
    # The file says the same as memory.
    (segment,) = _segments(tmp_path)
    live = parse(segment.read_bytes())
    assert {rid: kind for rid, (kind, _) in live.items()} == {"r3": "entry"}
    journal.close()
    assert _segments(tmp_path) == [segment]  # something is outstanding: kept for the next start


def test_a_segment_with_nothing_outstanding_is_deleted_on_close(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.open("r1", {})
    journal.resolve(["r1"])
    journal.close()
    assert _segments(tmp_path) == []


def test_a_dead_processes_segment_is_adopted_once_and_its_open_requests_become_orphans(
    tmp_path: Path,
) -> None:
    _die_after(
        tmp_path,
        """
        j.open("inflight", {"user_id": 7, "estimate_micros": 900})
        j.open("finished", {"user_id": 7})
        j.park([("finished", {"request": {"id": "finished"}, "spend": {"openai": 12}})])
        j.open("written", {"user_id": 7})
        j.resolve(["written"])
        """,
    )
    (dead,) = _segments(tmp_path)
    alive = Journal(tmp_path)
    assert alive.adopt() == 2
    assert not dead.exists()
    assert alive.orphans() == [("inflight", {"user_id": 7, "estimate_micros": 900})]
    assert alive.pending() == [
        ("finished", {"request": {"id": "finished"}, "spend": {"openai": 12}})
    ]
    # What was adopted is durable in the adopter's own segment, should it die too.
    (alive_segment,) = _segments(tmp_path)
    kinds = {rid: kind for rid, (kind, _) in parse(alive_segment.read_bytes()).items()}
    assert kinds == {"inflight": "orphan", "finished": "entry"}
    other = Journal(tmp_path)
    assert other.adopt() == 0  # `alive` is alive: nothing to adopt
    other.close()
    alive.close()


def test_a_live_processes_segment_is_never_adopted(tmp_path: Path) -> None:
    owner = Journal(tmp_path)
    owner.open("mine", {})
    assert Journal(tmp_path).adopt() == 0
    assert owner.backlog().in_flight == 1
    owner.close()


def test_a_torn_last_line_is_skipped_and_the_rest_adopted(tmp_path: Path) -> None:
    # What a process killed in the middle of a write leaves behind.
    (tmp_path / f"999-dead{SUFFIX}").write_bytes(
        b'entry a {"request":{"id":"a"}}\n'
        b'open b {"user_id":1}\n'
        b"done a {}\n"
        b'entry c {"request":{"id":"c"}}\n'
        b'entry d {"requ'
    )
    journal = Journal(tmp_path)
    assert journal.adopt() == 2
    assert journal.pending() == [("c", {"request": {"id": "c"}})]
    assert journal.orphans() == [("b", {"user_id": 1})]
    journal.close()


def test_rotation_keeps_the_file_small_and_everything_outstanding(tmp_path: Path) -> None:
    journal = Journal(tmp_path, rotate_bytes=4096)
    journal.park([("kept", {"request": {"id": "kept"}})])
    for i in range(500):
        journal.open(f"r{i}", {"pad": "x" * 40})
        journal.resolve([f"r{i}"])
    (segment,) = _segments(tmp_path)
    assert segment.stat().st_size < 4096 + 200
    assert {rid: k for rid, (k, _) in parse(segment.read_bytes()).items()} == {"kept": "entry"}
    journal.close()


def test_without_a_directory_records_live_in_memory(tmp_path: Path) -> None:
    journal = Journal(None)
    journal.park([("a", {"x": 1})])
    assert journal.pending() == [("a", {"x": 1})]
    assert journal.adopt() == 0
    journal.resolve(["a"])
    assert journal.backlog().queued == 0
    journal.close()


def test_the_batch_writer_hands_off_what_the_database_refuses_and_never_drops_it(
    sessions: Any,
) -> None:
    """One bad row is written apart from its batch; the rest commit; the bad one is handed
    to ``on_failed`` (the journal, in the gateway), not logged and dropped."""
    from sqlalchemy import text

    from core.store.batch_writer import BatchWriter

    with sessions.begin() as s:
        s.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))

    def write(session: Any, items: list[tuple[int, str | None]]) -> None:
        for note_id, body in items:
            session.execute(
                text("INSERT INTO notes (id, body) VALUES (:i, :b)"), {"i": note_id, "b": body}
            )

    written: list[int] = []
    failed: list[int] = []
    writer: BatchWriter[tuple[int, str | None]] = BatchWriter(
        sessions,
        write,
        on_written=lambda items: written.extend(i for i, _ in items),
        on_failed=lambda items: failed.extend(i for i, _ in items),
    )
    for item in [(1, "a"), (2, None), (3, "c")]:  # 2 breaks NOT NULL
        writer.submit(item)
    assert writer.flush(30)
    writer.close()
    assert (sorted(written), failed) == ([1, 3], [2])
    with sessions() as s:
        assert [r[0] for r in s.execute(text("SELECT id FROM notes ORDER BY id"))] == [1, 3]
