"""The ledger loses nothing and budgets fail closed, on SQLite and PostgreSQL, with real faults.

Outages are real: SQLite is locked by another connection holding ``BEGIN EXCLUSIVE`` (every
write waits out its busy timeout and fails, as with a stuck writer or a full disk); the
PostgreSQL server of the test's own is stopped and started again. Providers are the
loopback fakes; the gateway is the real one, with its journal in the data folder.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.accounts import tokens
from core.accounts.secrets import load_cipher
from core.api.app import build_app
from core.api.context import ApiContext
from core.clock import utc_now
from core.config import load_settings
from core.errors import DatabaseUnavailable
from core.gateway.gateway import Gateway, GatewaySettings
from core.gateway.ledger_entry import LedgerEntry, write_entries
from core.gateway.runtime import Runtime
from core.gateway.upkeep import UpkeepSettings
from core.money import orphans
from core.money.budgets import set_budget
from core.money.catalog import Catalog, load_catalog
from core.money.reservations import reserve
from core.request import Caller, ChatRequest
from core.settings import endpoints
from core.store import db
from core.store.journal import Journal
from core.store.tables import Budget, RequestRow, Reservation, usage_daily
from tests.conftest import add_user
from tests.fakes import FakeOpenAI, Reply
from tests.support.postgres import LocalCluster
from tests.support.server import ServerThread

GPT = "openai/gpt-4o"
KEY = "sk-test-openai-key-0001"
Factory = sessionmaker[Session]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


class Outage:
    """Takes the database away and brings it back."""

    def __init__(self, down: Callable[[], None], up: Callable[[], None]) -> None:
        self.down, self.up = down, up


def _sqlite_outage(url: str) -> Outage:
    path = url.removeprefix("sqlite:///")
    holder: list[sqlite3.Connection] = []

    def down() -> None:
        conn = sqlite3.connect(path, isolation_level=None, timeout=10, check_same_thread=False)
        conn.execute("BEGIN EXCLUSIVE")  # every other writer now waits, then fails
        holder.append(conn)

    def up() -> None:
        conn = holder.pop()
        conn.execute("ROLLBACK")
        conn.close()

    return Outage(down, up)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def faulty(request: pytest.FixtureRequest, isolated_env: Path) -> Iterator[tuple[str, Outage]]:
    """A migrated database URL and the way to take that database away."""
    if request.param == "sqlite":
        url = os.environ["SWITCHBOARD_DB_URL"]
        outage = _sqlite_outage(url)
    else:
        cluster, url = request.getfixturevalue("stoppable_postgres")
        assert isinstance(cluster, LocalCluster)
        outage = Outage(cluster.pause, cluster.resume)
    engine = db.make_engine(url)
    db.upgrade_database(engine)
    engine.dispose()
    yield url, outage


def _engine_sessions(url: str) -> tuple[Any, Factory]:
    # Short timeouts, so an outage is noticed within seconds; long enough that the
    # writers of a busy SQLite file (one at a time) do not time out on each other.
    engine = db.make_engine(url, connect_timeout_s=1, statement_timeout_s=2)
    return engine, db.make_session_factory(engine)


def _wire(sessions: Factory, fake: FakeOpenAI, budget_micros: int) -> Caller:
    now = utc_now()
    with sessions.begin() as s:
        endpoints.add_endpoint(
            s, name="openai", kind="override", api_base=fake.base_url, actor="test", now=now,
            builtin_providers=("openai",),
        )  # fmt: skip
    user = add_user(sessions, "alice")
    with sessions.begin() as s:
        set_budget(s, "user", str(user.id), budget_micros, True, "admin", now)
    return Caller(user.id, user.username, user.role, None)


def _gateway(sessions: Factory, catalog: Catalog, journal_dir: Path) -> Gateway:
    return Gateway(
        sessions=sessions,
        catalog=catalog,
        cipher=load_cipher(load_settings()),
        environ={"OPENAI_API_KEY": KEY},
        settings=GatewaySettings(
            db_wait_s=3.0,
            upkeep=UpkeepSettings(replay_interval_s=0.1, max_backoff_s=0.5, sweep_interval_s=3600),
        ),
        journal=Journal(journal_dir),
    )


async def _until(check: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def _ledger(sessions: Factory) -> tuple[list[RequestRow], Budget, int, tuple[int, int]]:
    """(requests rows, the budget, open reservation rows, rollup (requests, cost))."""
    with sessions() as s:
        rows = list(s.scalars(select(RequestRow)))
        budget = s.scalars(select(Budget)).one()
        held = s.scalar(select(func.count()).where(Reservation.amount_micros > 0)) or 0
        rollup = s.execute(
            select(
                func.coalesce(func.sum(usage_daily.c.requests), 0),
                func.coalesce(func.sum(usage_daily.c.cost_micros), 0),
            )
        ).one()
    return rows, budget, held, (int(rollup[0]), int(rollup[1]))


async def test_the_database_away_mid_load_loses_no_row_and_counts_nothing_twice(
    faulty: tuple[str, Outage], catalog: Catalog, fake_openai: FakeOpenAI, isolated_env: Path
) -> None:
    url, outage = faulty
    engine, sessions = _engine_sessions(url)
    caller = _wire(sessions, fake_openai, 100_000_000)
    gateway = _gateway(sessions, catalog, isolated_env / "journal")

    def ask() -> ChatRequest:
        return ChatRequest(caller=caller, messages=({"role": "user", "content": "hi"},), model=GPT)

    try:
        await gateway.complete(ask())  # warm: later admissions need no query
        assert await asyncio.to_thread(gateway.flush, 60)  # and its row is in before the outage
        fake_openai.configure("gpt-4o", default=Reply(token_delay=0.1))
        n = 8
        calls = [asyncio.create_task(gateway.complete(ask())) for _ in range(n)]
        # Every one is admitted (its budget held) and waiting on the provider ...
        await _until(lambda: fake_openai.count("gpt-4o") == n + 1, "the calls to reach upstream")
        await asyncio.to_thread(outage.down)  # ... when the database goes away.
        answers = await asyncio.gather(*calls)
        assert {a.text for a in answers} == {fake_openai.reply_text("gpt-4o")}  # all delivered
        # A new request needs a budget check it cannot get: refused, never let through.
        with pytest.raises(DatabaseUnavailable):
            await gateway.complete(ask())
        assert fake_openai.count("gpt-4o") == n + 1
        assert await asyncio.to_thread(gateway.flush, 60)
        assert gateway.backlog().entries == n + 1  # the answered ones and the refusal
        await asyncio.to_thread(outage.up)
        await _until(lambda: gateway.backlog().queued == 0, "the journal to drain")
    finally:
        await gateway.aclose()
        gateway.close()
    rows, budget, held, rollup = _ledger(sessions)
    engine.dispose()
    assert len(rows) == len({r.id for r in rows}) == n + 2
    answered = [r for r in rows if r.status == "success"]
    assert len(answered) == n + 1 and {r.id for r in answered} >= {
        a.summary.request_id for a in answers
    }
    spent = sum(r.cost_micros or 0 for r in answered)
    assert spent > 0 and not any(r.estimated for r in rows)
    # Each settled exactly once: spend is the sum of the rows, nothing is still held.
    assert (budget.spent_micros, budget.reserved_micros, held) == (spent, 0, 0)
    assert rollup == (n + 2, spent)


def test_orphaned_holds_become_interrupted_rows_then_reconcile_with_the_real_ones(
    replicas: list[Factory],
) -> None:
    sessions = replicas[0]
    user = add_user(sessions, "alice")
    alice = Caller(user.id, user.username, user.role, None)
    now = utc_now()
    with sessions.begin() as s:
        set_budget(s, "user", str(user.id), 50_000, True, "admin", now)
    trace = {"user_id": user.id, "username": "alice", "source": "api", "requested_model": GPT}
    for rid in ("expired", "killed"):
        reserve(
            sessions, request_id=rid, caller=alice, amounts={"openai": 20_000}, now=now,
            ttl=timedelta(minutes=10), trace=trace,
        )  # fmt: skip
    # "killed": its process died (a journal orphan); "expired": nobody knows, the TTL passed.
    with sessions.begin() as s:
        orphan = orphans.Orphan("killed", now, {**trace, "at": now.isoformat()}, 15_000)
        assert orphans.interrupt(s, [orphan], now) == 1
        assert orphans.interrupt(s, [orphan], now) == 0  # once only
    assert orphans.expire_due(sessions, now + timedelta(minutes=11)) == 1
    rows, budget, held, rollup = _ledger(sessions)
    assert sorted((r.id, r.status, r.cost_micros, r.estimated) for r in rows) == [
        ("expired", "interrupted", 20_000, True),
        ("killed", "interrupted", 20_000, True),  # the hold, more than the journal's guess
    ]
    assert (budget.spent_micros, budget.reserved_micros, held) == (40_000, 0, 0)
    assert rollup == (2, 40_000)
    # The real figures arrive from a journal replay: the estimate goes, the real cost counts.
    real = LedgerEntry(
        "killed",
        {**_row_like(rows, "killed"), "status": "success", "cost_micros": 3_000,
         "estimated": False, "served_model": GPT, "error_class": None, "error_message": None},
        [], {"openai": 3_000}, True, user.id, now,
    )  # fmt: skip
    for _ in range(2):  # replaying twice changes nothing the second time
        with sessions.begin() as s:
            write_entries(s, [real], now)
    rows, budget, held, rollup = _ledger(sessions)
    assert sorted((r.id, r.status, r.cost_micros, r.estimated) for r in rows) == [
        ("expired", "interrupted", 20_000, True),
        ("killed", "success", 3_000, False),
    ]
    assert (budget.spent_micros, budget.reserved_micros) == (23_000, 0)
    assert rollup == (2, 23_000)


def _row_like(rows: list[RequestRow], rid: str) -> dict[str, Any]:
    row = next(r for r in rows if r.id == rid)
    return {c.name: getattr(row, c.key) for c in RequestRow.__table__.columns}


async def test_v1_answers_503_database_unavailable_with_retry_after(
    faulty: tuple[str, Outage], catalog: Catalog, fake_openai: FakeOpenAI, isolated_env: Path
) -> None:
    url, outage = faulty
    engine, sessions = _engine_sessions(url)
    _wire(sessions, fake_openai, 100_000_000)
    with sessions.begin() as s:
        token, _ = tokens.create_token(s, username="alice", actor="test", now=utc_now())
    settings = load_settings(db_url=url, db_connect_timeout_s=1, db_statement_timeout_s=2)
    runtime = Runtime(
        settings, engine, sessions, catalog, load_cipher(settings),
        _gateway(sessions, catalog, isolated_env / "journal"),
    )  # fmt: skip
    ctx = ApiContext(settings, runtime_factory=lambda _: runtime, environ={"OPENAI_API_KEY": KEY})
    body = {"model": GPT, "messages": [{"role": "user", "content": "hi"}]}
    with ServerThread(build_app(ctx)) as server:
        client = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert client.post("/v1/chat/completions", json=body).status_code == 200
        await asyncio.to_thread(outage.down)
        try:
            for stream in (False, True):
                refused = client.post("/v1/chat/completions", json={**body, "stream": stream})
                assert refused.status_code == 503, refused.text
                assert refused.json()["error"]["code"] == "database_unavailable"
                assert int(refused.headers["retry-after"]) >= 1
                assert url.split("@")[-1] not in refused.text  # no host, no credentials
            await _until(  # the refusals' own rows wait in the journal
                lambda: client.get("/health").json()["journal"]["queued"] >= 1, "a backlog"
            )
        finally:
            await asyncio.to_thread(outage.up)
        await _until(lambda: runtime.gateway.backlog().queued == 0, "the journal to drain")
        assert client.get("/health").json()["status"] == "ok"
        client.close()
    ctx.close()
    assert fake_openai.count("gpt-4o") == 1  # nothing went upstream without a budget check


@pytest.mark.postgres
def test_pages_show_a_banner_not_a_traceback_while_the_database_is_away(
    stoppable_postgres: tuple[LocalCluster, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.pages import signed_in, texts

    cluster, url = stoppable_postgres
    monkeypatch.setenv("SWITCHBOARD_DB_URL", url)
    engine = db.make_engine(url)
    db.upgrade_database(engine)
    add_user(db.make_session_factory(engine), "alice", "admin")
    engine.dispose()
    at = signed_in("alice", timeout=120)  # through app.py's navigation, as a browser gets it
    assert not at.exception
    cluster.pause()
    try:
        at = signed_in("alice", timeout=120)  # the next visit, through app.py again
        assert not at.exception
        shown = " ".join(e.value for e in at.error)
        assert "The database is not answering right now" in shown
        assert "Traceback" not in texts(at)
    finally:
        cluster.resume()
    at = signed_in("alice", timeout=120)
    assert not at.exception and not at.error
