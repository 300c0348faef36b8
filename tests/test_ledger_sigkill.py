"""A real `switchboard api` process SIGKILLed under load, then started again.

Nothing it had to account for is lost: the requests it had answered while the database
was locked wait in its journal; the requests still in flight left budget holds and
journal notes. The holds become ``interrupted`` rows with the held worst case as an
estimated cost (never $0), and the restarted process replays the journal: the answered
requests get their real rows and figures in place of the estimates, each counted once.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from core.clock import utc_now
from core.money import orphans
from core.money.budgets import set_budget
from core.store import db
from core.store.journal import SUFFIX, parse
from core.store.tables import Budget, RequestRow, Reservation, User, usage_daily
from tests.fakes import FakeOpenAI, Reply
from tests.support.postgres import LocalCluster
from tests.support.server import free_socket
from tests.test_api_openai_sdk import PROJECT, _env, _prepare_db, _wait_for

pytestmark = pytest.mark.timeout(400)
GPT, MINI = "openai/gpt-4o", "openai/gpt-4o-mini"


def _start(port: int) -> subprocess.Popen[bytes]:
    env = {**_env(), "SWITCHBOARD_DB_STATEMENT_TIMEOUT_S": "1"}  # a locked file fails fast
    return subprocess.Popen(
        [sys.executable, "-m", "core", "api", "--port", str(port), "--log-level", "warning"],
        env=env,
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _until(check: Callable[[], bool], what: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _journal_kinds(journal: Path) -> list[str]:
    return [
        kind
        for segment in journal.glob(f"*{SUFFIX}")
        for kind, _ in parse(segment.read_bytes()).values()
    ]


class Away:
    """The database taken away while answers come back, and brought back before the restart."""

    def __init__(self, url: str, take: Callable[[], None], give: Callable[[], None]) -> None:
        self.url, self._take, self._give, self.taken = url, take, give, False

    def take(self) -> None:
        self._take()
        self.taken = True

    def give_back(self) -> None:
        if self.taken:
            self.taken = False
            self._give()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(
    request: pytest.FixtureRequest, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Away]:
    """SQLite: a writer holding the file's exclusive lock. PostgreSQL: the server stopped
    (every connection dropped, new ones refused) and started again on the same port."""
    if request.param == "sqlite":
        url = os.environ["SWITCHBOARD_DB_URL"]
        lock = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None,
                               check_same_thread=False)  # fmt: skip
        away = Away(url, lambda: lock.execute("BEGIN EXCLUSIVE"),
                    lambda: lock.execute("ROLLBACK"))  # fmt: skip
        try:
            yield away
        finally:
            away.give_back()
            lock.close()
        return
    cluster, url = request.getfixturevalue("stoppable_postgres")
    assert isinstance(cluster, LocalCluster)
    monkeypatch.setenv("SWITCHBOARD_DB_URL", url)  # the API processes inherit it
    away = Away(url, cluster.stop_server, cluster.restart_server)
    try:
        yield away
    finally:
        away.give_back()


def test_a_sigkilled_api_leaves_interrupted_rows_that_its_journal_reconciles(
    isolated_env: Path, fake_openai: FakeOpenAI, database: Away
) -> None:
    url = database.url
    token = _prepare_db(url, fake_openai)
    engine = db.make_engine(url)
    sessions = db.make_session_factory(engine)
    with sessions.begin() as s:
        alice = s.scalars(select(User.id).where(User.username == "alice")).one()
        set_budget(s, "user", str(alice), 50_000_000, True, "admin", utc_now())
    fake_openai.configure("gpt-4o", default=Reply(token_delay=0.5))  # answered, slowly
    fake_openai.configure("gpt-4o-mini", default=Reply(first_token_delay=600))  # never
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}

    def ask(model: str) -> int:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        try:
            return httpx.post(f"{base}/v1/chat/completions", json=body, headers=headers,
                              timeout=120).status_code  # fmt: skip
        except httpx.TransportError:
            return 0  # the process was killed under it

    first = _start(port)
    pool = ThreadPoolExecutor(8)
    try:
        _wait_for(f"{base}/health", first, timeout=120)
        answered = [pool.submit(ask, GPT) for _ in range(4)]
        in_flight = [pool.submit(ask, MINI) for _ in range(4)]
        _until(lambda: fake_openai.count() == 8, "every request to reach upstream (holds made)")
        database.take()  # the database is away as the answers come back
        assert [f.result(timeout=120) for f in answered] == [200] * 4  # delivered regardless
        journal = isolated_env / "journal"
        _until(lambda: _journal_kinds(journal).count("entry") == 4, "the rows to be journaled")
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        database.give_back()
    assert [f.result(timeout=60) for f in in_flight] == [0] * 4
    assert sorted(_journal_kinds(journal)) == ["entry"] * 4 + ["open"] * 4
    with sessions() as s:
        assert s.scalar(select(func.count(RequestRow.id))) == 0
        holds = dict(
            s.execute(
                select(Reservation.request_id, Reservation.amount_micros).where(
                    Reservation.amount_micros > 0
                )
            ).all()
        )
    assert len(holds) == 8 and all(holds.values())

    # No process runs; the holds' time runs out. They are charged, never freed to $0.
    assert orphans.expire_due(sessions, utc_now() + timedelta(minutes=11)) == 8
    with sessions() as s:
        rows = {r.id: r for r in s.scalars(select(RequestRow))}
        budget = s.scalars(select(Budget)).one()
    assert {(r.status, r.estimated) for r in rows.values()} == {("interrupted", True)}
    assert {rid: r.cost_micros for rid, r in rows.items()} == holds
    assert (budget.spent_micros, budget.reserved_micros) == (sum(holds.values()), 0)

    # Restarted: it adopts the dead process's journal and replays it.
    second = _start(port)
    try:
        _wait_for(f"{base}/health", second, timeout=120)

        def reconciled() -> bool:
            with sessions() as s:
                return s.scalar(select(func.count()).where(RequestRow.status == "success")) == 4

        _until(reconciled, "the journal's real rows to replace the estimates")
        _until(lambda: httpx.get(f"{base}/health").json()["status"] == "ok", "an empty journal")
    finally:
        second.send_signal(signal.SIGTERM)
        output, _ = second.communicate(timeout=60)
    assert b"Traceback" not in output, output.decode()
    with sessions() as s:
        rows = {r.id: r for r in s.scalars(select(RequestRow))}
        budget = s.scalars(select(Budget)).one()
        rollup = s.execute(
            select(func.sum(usage_daily.c.requests), func.sum(usage_daily.c.cost_micros))
        ).one()
        left = s.scalar(select(func.count()).where(Reservation.amount_micros > 0))
    real = [r for r in rows.values() if r.status == "success"]
    estimated = [r for r in rows.values() if r.status == "interrupted"]
    assert len(rows) == fake_openai.count() == 8  # every upstream call is in the ledger, once
    assert len(real) == 4 and not any(r.estimated for r in real)
    assert all(0 < (r.cost_micros or 0) < holds[r.id] for r in real)  # real figures, not holds
    assert len(estimated) == 4 and all(r.estimated for r in estimated)
    assert {r.served_model for r in real} == {GPT}
    spent = sum(r.cost_micros or 0 for r in rows.values())
    assert (budget.spent_micros, budget.reserved_micros, left) == (spent, 0, 0)
    assert tuple(rollup) == (8, spent)
    assert _journal_kinds(journal) == []  # everything it held is in the database
    pool.shutdown(wait=False, cancel_futures=True)
    engine.dispose()
