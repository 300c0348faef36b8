"""core.store.ledger and `switchboard usage export`: every field round-trips, keyset pages."""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event, func, select, text

from core.commands import usage
from core.errors import AllModelsFailed
from core.request import (
    STATUS_FALLBACK,
    STATUS_NO_KEY,
    STATUS_SUCCESS,
    Attempt,
    Caller,
    ChatRequest,
    Summary,
    Usage,
)
from core.store import ledger
from core.store.tables import AttemptRow, RequestRow
from tests.support.cli import run_cli

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ALICE = Caller(user_id=7, username="alice", role="member", team_id=3, token_name="ci")


def make_request(caller: Caller = ALICE, **kw) -> ChatRequest:
    return ChatRequest(caller=caller, messages=({"role": "user", "content": "hi"},), **kw)


def make_summary(request_id: str, at: datetime = T0, **kw) -> Summary:
    attempt = Attempt(
        "openai/gpt-4o-mini",
        "openai",
        "ok",
        at,
        latency_ms=80,
        ttft_ms=20,
        usage=Usage(10, 5),
        cost_micros=12,
    )
    fields = {
        "requested_model": "auto",
        "chain": ("openai/gpt-4o-mini",),
        "route_source": "org",
        "status": STATUS_SUCCESS,
        "attempts": (attempt,),
        "model": "openai/gpt-4o-mini",
        "provider": "openai",
        "usage": Usage(10, 5),
        "cost_micros": 12,
        "latency_ms": 80,
        "ttft_ms": 20,
        **kw,
    }
    return Summary(request_id=request_id, **fields)


def fallback_summary() -> Summary:
    attempts = (
        Attempt(
            "openai/gpt-4o",
            "openai",
            "error",
            T0,
            latency_ms=300,
            key_source="org",
            status_code=503,
            error_class="ServiceUnavailable",
            error_message="overloaded",
            cost_micros=None,
            priced=False,
            price_version="stray",
        ),  # unpriced: not kept
        Attempt(
            "openai/gpt-4o",
            "openai",
            "error",
            T0 + timedelta(seconds=1),
            latency_ms=250,
            key_source="org",
            status_code=503,
            error_class="ServiceUnavailable",
            error_message="still overloaded",
            cost_micros=0,
            price_version="pv-older",
        ),
        Attempt(
            "anthropic/claude-sonnet-4",
            "anthropic",
            "ok",
            T0 + timedelta(seconds=2),
            latency_ms=900,
            ttft_ms=120,
            key_source="team",
            usage=Usage(1200, 300, cached_tokens=1000, reasoning_tokens=50),
            cost_micros=8_100,
            price_version="litellm-1.90.7+2026-10",
        ),
    )
    return Summary(
        request_id="req-fallback",
        requested_model="openai/gpt-4o",
        chain=("openai/gpt-4o", "anthropic/claude-sonnet-4"),
        route_source="team",
        status=STATUS_FALLBACK,
        attempts=attempts,
        model="anthropic/claude-sonnet-4",
        provider="anthropic",
        usage=Usage(1200, 300, cached_tokens=1000, reasoning_tokens=50),
        cost_micros=8_100,
        priced=True,
        price_version="litellm-1.90.7+2026-10",
        fallback_used=True,
        finish_reason="stop",
        latency_ms=1450,
        ttft_ms=1370,
        order_reason="cost-optimised: cheapest healthy first",
    )


def test_record_writes_every_field_and_attempts_in_order(replicas):
    # Both backends: the multi-row INSERT applies each column's own bind processing.
    sessions = replicas[0]
    request = make_request(
        task="summarise",
        source="chat",
        profile="terse",
        conversation_id="conv-1",
        model="openai/gpt-4o",
        metadata={"ticket": "T-1", "run": 3, "ok": True},
    )
    with sessions.begin() as s:
        summary = replace(fallback_summary(), dropped_params=("seed", "verbosity"))
        ledger.record(s, request, summary, T0 + timedelta(seconds=5))
    with sessions() as s:
        rows = list(ledger.iter_requests(s, None, None))
        attempts = ledger.attempts_for(s, "req-fallback")
    assert len(rows) == 1
    assert rows[0] == {
        "id": "req-fallback",
        "at": T0,
        "user_id": 7,
        "username": "alice",
        "team_id": 3,
        "source": "chat",
        "task": "summarise",
        "profile": "terse",
        "conversation_id": "conv-1",
        "token_name": "ci",
        "requested_model": "openai/gpt-4o",
        "served_model": "anthropic/claude-sonnet-4",
        "provider": "anthropic",
        "route_source": "team",
        "chain": ["openai/gpt-4o", "anthropic/claude-sonnet-4"],
        "order_reason": "cost-optimised: cheapest healthy first",
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "cached_tokens": 1000,
        "reasoning_tokens": 50,
        "cost_micros": 8_100,
        "priced": True,
        "price_version": "litellm-1.90.7+2026-10",
        "latency_ms": 1450,
        "ttft_ms": 1370,
        "status": STATUS_FALLBACK,
        "fallback_used": True,
        "finish_reason": "stop",
        "error_class": None,
        "error_message": None,
        "attempt_count": 3,
        "request_metadata": {"ticket": "T-1", "run": 3, "ok": True},
        "estimated": False,
        "dropped_params": ["seed", "verbosity"],
    }
    assert [(a["seq"], a["model"], a["outcome"]) for a in attempts] == [
        (1, "openai/gpt-4o", "error"),
        (2, "openai/gpt-4o", "error"),
        (3, "anthropic/claude-sonnet-4", "ok"),
    ]
    first, _, last = attempts
    assert {k: v for k, v in first.items() if k != "id"} == {
        "request_id": "req-fallback",
        "seq": 1,
        "at": T0,
        "model": "openai/gpt-4o",
        "provider": "openai",
        "key_source": "org",
        "outcome": "error",
        "status_code": 503,
        "error_class": "ServiceUnavailable",
        "error_message": "overloaded",
        "latency_ms": 300,
        "ttft_ms": None,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cost_micros": None,
        "priced": False,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
        "price_version": None,
    }
    assert attempts[1]["cost_micros"] == 0 and attempts[1]["priced"] is True
    assert attempts[1]["price_version"] == "pv-older"
    assert (last["at"], last["key_source"], last["ttft_ms"]) == (
        T0 + timedelta(seconds=2),
        "team",
        120,
    )
    assert (last["prompt_tokens"], last["completion_tokens"], last["cost_micros"]) == (
        1200,
        300,
        8_100,
    )
    assert (last["cached_tokens"], last["reasoning_tokens"], last["price_version"]) == (
        1000,
        50,
        "litellm-1.90.7+2026-10",
    )


def test_failure_records_error_class_and_truncated_message(sessions):
    summary = Summary(
        request_id="req-nokey",
        requested_model="x/y",
        chain=("x/y",),
        route_source="request",
        status=STATUS_NO_KEY,
        attempts=(),
        error=AllModelsFailed("boom " * 2000),
        cost_micros=None,
        priced=False,
    )
    with sessions.begin() as s:
        ledger.record(s, make_request(), summary, T0)
    with sessions() as s:
        row = next(ledger.iter_requests(s, None, None))
    assert (row["at"], row["attempt_count"], row["served_model"]) == (T0, 0, None)
    assert row["error_class"] == "AllModelsFailed"
    assert row["error_message"].startswith("boom ") and len(row["error_message"]) == 2000


@pytest.mark.parametrize("metadata", [{}, {"k": "v"}])
def test_metadata_is_sql_null_when_none_was_sent(replicas, metadata):
    # SQL NULL, not the JSON text 'null', so `IS NULL` finds requests without metadata.
    sessions = replicas[0]
    with sessions.begin() as s:
        ledger.record(s, make_request(metadata=metadata), make_summary("r1"), T0)
    with sessions() as s:
        missing = s.scalar(select(func.count()).where(RequestRow.request_metadata.is_(None)))
        stored = s.scalar(select(RequestRow.request_metadata))
    assert (missing, stored) == ((1, None) if not metadata else (0, metadata))


@pytest.mark.parametrize("cost", [None, 0, 55])
def test_unpriced_is_null_never_zero(sessions, cost):
    # priced=False wins even if a sloppy caller left the default cost of 0 in place.
    with sessions.begin() as s:
        ledger.record(s, make_request(), make_summary("r1", cost_micros=cost, priced=False), T0)
    with sessions() as s:
        raw = s.execute(text("SELECT cost_micros, priced FROM requests")).one()
        assert tuple(raw) == (None, 0)
        assert s.scalar(select(func.count()).where(RequestRow.cost_micros.is_(None))) == 1


def test_record_many_bulk_inserts_5000_requests(sessions, engine):
    items = [
        (
            make_request(),
            make_summary(
                f"req-{i:05d}", T0 + timedelta(milliseconds=i), attempts=_three_attempts(T0)
            ),
        )
        for i in range(5000)
    ]
    inserts: list[str] = []
    event.listen(
        engine,
        "before_cursor_execute",
        lambda *a: inserts.append(a[2]) if a[2].startswith("INSERT") else None,
    )
    started = time.perf_counter()
    with sessions.begin() as s:
        ledger.record_many(s, items, T0)
    elapsed = time.perf_counter() - started
    print(
        f"\nrecord_many: 5000 requests + 15000 attempts in {elapsed * 1000:.0f} ms "
        f"({5000 / elapsed:,.0f} requests/s)"
    )
    with sessions() as s:
        assert ledger.count_requests(s, None, None) == 5000
        assert s.scalar(select(func.count()).select_from(AttemptRow)) == 15000
    # executemany batches: a handful of statements, not one per row.
    assert len(inserts) < 100


def _three_attempts(at: datetime) -> tuple[Attempt, ...]:
    return tuple(
        Attempt(f"m/{n}", "p", outcome, at, latency_ms=10)
        for n, outcome in enumerate(("error", "error", "ok"))
    )


def test_record_many_of_nothing_is_a_no_op(sessions):
    with sessions.begin() as s:
        ledger.record_many(s, [], T0)


def test_iter_requests_pages_by_keyset_through_identical_timestamps(sessions, engine):
    tie = T0 + timedelta(hours=1)
    ids = [f"r{n:03d}" for n in range(23)]
    times = [tie] * 17 + [T0] * 3 + [tie + timedelta(seconds=1)] * 3
    items = [
        (make_request(), make_summary(i, at=t)) for i, t in zip(reversed(ids), times, strict=True)
    ]  # insert order differs from id order
    with sessions.begin() as s:
        ledger.record_many(s, items, T0)
    statements: list[tuple[str, tuple]] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append((a[2], a[3])))
    with sessions() as s:
        got = [(r["at"], r["id"]) for r in ledger.iter_requests(s, None, None, batch=5)]
    assert got == sorted((t, i) for i, t in zip(reversed(ids), times, strict=True))
    assert len({i for _, i in got}) == 23
    selects = [(q, p) for q, p in statements if q.lstrip().startswith("SELECT")]
    assert len(selects) == 5  # ceil(23 / 5); each page is one bounded query
    # SQLite's dialect always renders "LIMIT ? OFFSET ?"; the offset must stay 0 and
    # every later page must start from the keyset instead.
    assert all(q.rstrip().endswith("LIMIT ? OFFSET ?") and p[-2:] == (5, 0) for q, p in selects)
    assert all("requests.at >= ?" in q for q, _ in selects[1:])


def test_iter_requests_exact_multiple_of_batch_ends_cleanly(sessions):
    with sessions.begin() as s:
        ledger.record_many(s, [(make_request(), make_summary(f"r{i}")) for i in range(6)], T0)
    with sessions() as s:
        assert len(list(ledger.iter_requests(s, None, None, batch=3))) == 6
        with pytest.raises(ValueError):
            list(ledger.iter_requests(s, None, None, batch=0))


def test_date_filters_are_inclusive_utc_days_and_user_filter(sessions):
    day = datetime(2026, 11, 1, tzinfo=UTC)
    stamps = {
        "before": day - timedelta(microseconds=1),
        "start": day,
        "end": day + timedelta(days=1, microseconds=-1),
        "after": day + timedelta(days=1),
    }
    bob = Caller(user_id=8, username="bob", role="member")
    with sessions.begin() as s:
        ledger.record_many(
            s, [(make_request(), make_summary(k, at=t)) for k, t in stamps.items()], T0
        )
        ledger.record(s, make_request(bob), make_summary("bob-start", at=day), T0)
    nov1 = date(2026, 11, 1)
    with sessions() as s:

        def ids(**kw):
            return [r["id"] for r in ledger.iter_requests(s, **kw)]

        assert ids(since=nov1, until=nov1) == ["bob-start", "start", "end"]
        assert ids(since=nov1, until=nov1, user_id=7) == ["start", "end"]
        assert ids(since=None, until=date(2026, 10, 31)) == ["before"]
        assert ids(since=date(2026, 11, 2), until=None) == ["after"]
        assert ledger.count_requests(s, nov1, nov1) == 3
        assert ledger.count_requests(s, nov1, nov1, user_id=8) == 1
        assert ledger.count_requests(s, None, None) == 5


def test_recent_stats_aggregates_calls_per_model(sessions):
    a, b = "openai/gpt-4o", "anthropic/claude-sonnet-4"
    recent = T0 + timedelta(minutes=30)
    attempts = (
        Attempt(a, "openai", "ok", recent, latency_ms=100, ttft_ms=10),
        Attempt(a, "openai", "ok", recent, latency_ms=900, ttft_ms=30),
        Attempt(a, "openai", "ok", recent, latency_ms=200),
        Attempt(a, "openai", "timeout", recent, latency_ms=60_000),
        Attempt(a, "openai", "skipped-breaker", recent),  # never called: not counted
        Attempt(a, "openai", "stopped", recent, latency_ms=700),  # the caller's Stop: neither
        Attempt(b, "anthropic", "error", recent, latency_ms=5),
        Attempt(b, "anthropic", "no-key", recent),
        Attempt("old/model", "old", "ok", T0 - timedelta(days=2), latency_ms=1),
    )
    with sessions.begin() as s:
        ledger.record(s, make_request(), make_summary("r1", attempts=attempts), T0)
    with sessions() as s:
        stats = ledger.recent_stats(s, T0)
    assert set(stats) == {a, b}
    assert stats[a] == ledger.ModelStats(
        model=a,
        requests=4,
        successes=3,
        success_rate=0.75,
        avg_latency_ms=400.0,
        p50_latency_ms=200,
        avg_ttft_ms=20.0,
    )
    assert stats[b] == ledger.ModelStats(
        model=b,
        requests=1,
        successes=0,
        success_rate=0.0,
        avg_latency_ms=None,
        p50_latency_ms=None,
        avg_ttft_ms=None,
    )


# ---- `switchboard usage export` ---------------------------------------------------------


def run(*argv: str) -> tuple[int, str, str]:
    return run_cli(*argv)


# A comma, a quote and non-ASCII: the CSV cell must still read back as this JSON.
EXPORTED_METADATA = {"ticket": 'OPS-1, "urgent"', "run": 3, "dry": False, "who": "zoë"}


@pytest.fixture
def exportable(sessions):
    day = datetime(2026, 11, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    with sessions.begin() as s:
        ledger.record(
            s,
            make_request(task="code", metadata=EXPORTED_METADATA),
            make_summary("r-priced", at=day, cost_micros=1_234, price_version="pv1"),
            T0,
        )
        ledger.record(
            s,
            make_request(source="chat"),
            make_summary(
                "r-dollars", at=day + timedelta(hours=1), cost_micros=2_500_000, fallback_used=True
            ),
            T0,
        )
        ledger.record(
            s,
            make_request(),
            make_summary("r-unpriced", at=day + timedelta(days=1), cost_micros=None, priced=False),
            T0,
        )
    return day


def test_usage_export_csv(monkeypatch, exportable):
    code, out, err = run("usage", "export")
    assert (code, err) == (0, "")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == [name for name, _ in usage.EXPORT_COLUMNS]
    assert [r["request_id"] for r in rows] == ["r-priced", "r-dollars", "r-unpriced"]
    first = rows[0]
    assert first["time"] == "2026-11-01T12:00:00.250000Z"
    assert (first["user"], first["team_id"], first["task"], first["source"]) == (
        "alice",
        "3",
        "code",
        "api",
    )
    assert (first["cost_usd"], first["priced"], first["price_version"]) == (
        "0.001234",
        "true",
        "pv1",
    )
    assert (first["prompt_tokens"], first["completion_tokens"], first["ttft_ms"]) == (
        "10",
        "5",
        "20",
    )
    assert (rows[1]["cost_usd"], rows[1]["fallback_used"]) == ("2.500000", "true")
    assert (rows[2]["cost_usd"], rows[2]["priced"]) == ("", "false")
    assert json.loads(first["metadata"]) == EXPORTED_METADATA
    assert [r["metadata"] for r in rows[1:]] == ["", ""]  # none sent


def test_usage_export_json_lines_with_until_inclusive(monkeypatch, exportable):
    code, out, _ = run(
        "usage", "export", "--format", "json", "--since", "2026-11-01", "--until", "2026-11-01"
    )
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2
    objs = [json.loads(line) for line in lines]
    assert [o["cost_usd"] for o in objs] == ["0.001234", "2.500000"]
    assert objs[0]["priced"] is True and objs[0]["error_class"] is None
    assert objs[0]["time"] == "2026-11-01T12:00:00.250000Z"
    assert (objs[0]["metadata"], objs[1]["metadata"]) == (EXPORTED_METADATA, None)
    assert list(objs[0]) == [name for name, _ in usage.EXPORT_COLUMNS]
    code, out, _ = run("usage", "export", "--format", "json", "--since", "2026-11-02")
    (only,) = [json.loads(line) for line in out.splitlines()]
    assert (only["request_id"], only["cost_usd"], only["priced"]) == ("r-unpriced", None, False)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_filtered_usage_export_carries_metadata_too(monkeypatch, exportable, fmt):
    # Filters take the Analytics query path (iter_filtered_requests), not the plain one.
    code, out, _ = run("usage", "export", "--format", fmt, "--task", "code")
    assert code == 0
    if fmt == "json":
        (only,) = [json.loads(line) for line in out.splitlines()]
    else:
        (only,) = list(csv.DictReader(io.StringIO(out)))
        only["metadata"] = json.loads(only["metadata"])
    assert (only["request_id"], only["metadata"]) == ("r-priced", EXPORTED_METADATA)


def test_usage_export_of_empty_range_is_just_the_header(monkeypatch, exportable):
    code, out, _ = run("usage", "export", "--until", "2020-01-01")
    assert code == 0 and out.splitlines() == [",".join(n for n, _ in usage.EXPORT_COLUMNS)]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("--since", "2026-13-01"), "--since must be a date like 2026-11-01"),
        (("--since", "20261101"), "--since must be a date like 2026-11-01"),
        (("--until", "yesterday"), "--until must be a date like 2026-11-01"),
        (("--until", "2026-02-30"), "--until must be a date like 2026-11-01"),
        (("--since", "2026-11-02", "--until", "2026-11-01"), "is after --until"),
    ],
)
def test_usage_export_bad_dates_get_one_clear_line(monkeypatch, isolated_env, argv, fragment):
    code, out, err = run("usage", "export", *argv)
    assert (code, out) == (2, "")
    assert fragment in err and err.count("\n") == 1
