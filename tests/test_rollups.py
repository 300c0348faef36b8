"""Daily rollups agree with the raw ledger: random data, SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, case, func, select
from sqlalchemy.orm import Session, sessionmaker

from core.store import db, histogram, ledger, rollups
from core.store.tables import USAGE_DAILY_DIMENSIONS, RequestRow, usage_daily
from tests.support.ledger_rows import insert, random_rows, request_row

START = datetime(2026, 10, 28, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db(request: pytest.FixtureRequest, engine: Engine) -> Iterator[sessionmaker[Session]]:
    if request.param == "sqlite":
        yield db.make_session_factory(engine)
        return
    pg = db.make_engine(request.getfixturevalue("postgres_url"))
    db.upgrade_database(pg)
    yield db.make_session_factory(pg)
    pg.dispose()


def _rollup_table(s: Session) -> dict[tuple[Any, ...], dict[str, int]]:
    measures = [
        c for c in usage_daily.c if c.name not in (*USAGE_DAILY_DIMENSIONS, "id", "username")
    ]
    out = {}
    for row in s.execute(select(usage_daily)).mappings():
        key = tuple(row[d] for d in USAGE_DAILY_DIMENSIONS)
        out[key] = {c.name: int(row[c.name]) for c in measures}
    return out


def _raw_sql_totals(s: Session) -> dict[tuple[Any, ...], tuple[int, ...]]:
    """Per-key totals from `requests`, with the NULL and success rules written in SQL."""
    r = RequestRow
    ok = r.status.in_(rollups.SUCCESS_STATUSES)
    rows = s.execute(
        select(
            r.at,
            func.coalesce(r.user_id, 0),
            func.coalesce(r.team_id, 0),
            func.coalesce(r.provider, ""),
            func.coalesce(r.served_model, r.requested_model),
            r.task,
            r.source,
            r.status,
            r.prompt_tokens,
            r.completion_tokens,
            func.coalesce(r.cost_micros, 0),
            case((ok, r.latency_ms), else_=0),
            case((ok, 1), else_=0),
            case((ok & r.ttft_ms.is_not(None), 1), else_=0),
        )
    ).all()
    totals: dict[tuple[Any, ...], list[int]] = {}
    for at, *rest in rows:
        key = (at.astimezone(UTC).date(), *rest[:7])  # the UTC day, as the rollup keys it
        acc = totals.setdefault(key, [0] * 7)
        for i, value in enumerate((1, *rest[7:])):
            acc[i] += int(value)
    return {k: tuple(v) for k, v in totals.items()}


def test_rollups_match_raw_aggregation_on_random_data(any_db):
    rng = random.Random(20261121)
    rows = random_rows(rng, 3000, START, days=6)
    # Several batches so the same key is upserted repeatedly, as the batched writer does.
    for start in range(0, len(rows), 250):
        insert(any_db, *rows[start : start + 250], attempts=False)

    with any_db() as s:
        table = _rollup_table(s)
        raw = _raw_sql_totals(s)
    assert set(table) == set(raw)
    for key, (n, prompt, completion, cost, latency, lat_n, ttft_n) in raw.items():
        got = table[key]
        assert (
            got["requests"],
            got["prompt_tokens"],
            got["completion_tokens"],
            got["cost_micros"],
            got["latency_sum_ms"],
            got["latency_n"],
            got["ttft_n"],
        ) == (n, prompt, completion, cost, latency, lat_n, ttft_n), key
    assert sum(v["requests"] for v in table.values()) == len(rows)

    # Histograms, max prompt, priced/unpriced and fallbacks against plain Python.
    expected: dict[tuple[Any, ...], dict[str, int]] = {}
    for row in rows:
        key = rollups.key_of(row)
        acc = expected.setdefault(
            key,
            {"max_prompt_tokens": 0, "unpriced_requests": 0, "fallbacks": 0, "priced_tokens": 0},
        )
        acc["max_prompt_tokens"] = max(acc["max_prompt_tokens"], row["prompt_tokens"])
        acc["unpriced_requests"] += row["cost_micros"] is None
        acc["fallbacks"] += row["fallback_used"]
        if row["cost_micros"] is not None:
            acc["priced_tokens"] += row["prompt_tokens"] + row["completion_tokens"]
        if row["status"] in rollups.SUCCESS_STATUSES:
            col = histogram.latency_column(histogram.bucket_of(row["latency_ms"]))
            acc[col] = acc.get(col, 0) + 1
            if row["ttft_ms"] is not None:
                col = histogram.ttft_column(histogram.bucket_of(row["ttft_ms"]))
                acc[col] = acc.get(col, 0) + 1
    for key, want in expected.items():
        got = table[key]
        for name, value in want.items():
            assert got[name] == value, (key, name)
        assert sum(got[c] for c in histogram.LATENCY_COLUMNS) == got["latency_n"]
        assert sum(got[c] for c in histogram.TTFT_COLUMNS) == got["ttft_n"]

    # A rebuild from the raw rows produces exactly the incrementally kept table.
    with any_db.begin() as s:
        assert rollups.rebuild(s) == len(rows)
    with any_db() as s:
        assert _rollup_table(s) == table


def test_a_rolled_back_write_leaves_neither_rows_nor_rollups(sessions):
    with pytest.raises(RuntimeError), sessions.begin() as s:
        ledger.insert_rows(s, [request_row(START)], [])
        raise RuntimeError("the batch failed after the insert")
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(RequestRow)) == 0
        assert s.scalar(select(func.count()).select_from(usage_daily)) == 0


def test_the_gateway_write_path_updates_rollups(sessions):
    """ledger.record_many (the batched writer's call) rolls up in the same transaction."""
    from tests.test_ledger import make_request, make_summary

    with sessions.begin() as s:
        ledger.record_many(
            s,
            [
                (make_request(task="t"), make_summary("a")),
                (make_request(task="t"), make_summary("b")),
            ],
            START,
        )
    with sessions() as s:
        row = s.execute(select(usage_daily)).mappings().one()
    assert (
        row["requests"],
        row["prompt_tokens"],
        row["completion_tokens"],
        row["cost_micros"],
        row["latency_sum_ms"],
        row["user_id"],
        row["team_id"],
    ) == (2, 20, 10, 24, 160, 7, 3)
