"""Daily usage rollups, kept current in the same transaction as the ledger rows.

``apply`` is called by ``ledger.insert_rows`` with the very dicts it inserts into
``requests``: the batch is summed per rollup key in Python, then upserted with one
executemany (``INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n``, on SQLite and
PostgreSQL alike). Both writes share the caller's transaction, so a rollup can never
disagree with the raw rows: either both commit or neither does.

Key: UTC day, user, team, provider, model (served, else requested), task, source and
status; NULLs become 0 or "" so the unique key matches them. Latency and time to first
token are counted over successful requests only (a failure's latency is a timeout or an
instant refusal, not a speed), as sums plus histograms (core/store/histogram.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from types import MappingProxyType
from typing import Any, Final

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.request import STATUS_FALLBACK, STATUS_SUCCESS
from core.store import histogram
from core.store.tables import USAGE_DAILY_DIMENSIONS, USAGE_DAILY_MEASURES, RequestRow, usage_daily

SUCCESS_STATUSES: Final = (STATUS_SUCCESS, STATUS_FALLBACK)
_ADDITIVE: Final = (*USAGE_DAILY_MEASURES, *histogram.LATENCY_COLUMNS, *histogram.TTFT_COLUMNS)
_REQ = RequestRow.__table__
# The ledger columns a rollup needs (rebuild reads only these).
SOURCE_COLUMNS: Final = (
    "at",
    "user_id",
    "username",
    "team_id",
    "provider",
    "served_model",
    "requested_model",
    "task",
    "source",
    "status",
    "fallback_used",
    "prompt_tokens",
    "completion_tokens",
    "cost_micros",
    "priced",
    "latency_ms",
    "ttft_ms",
)

Key = tuple[date, int, int, str, str, str, str, str]


def model_of(served: str | None, requested: str | None) -> str:
    """The model a request is filed under: what answered, else what was asked for."""
    return served or requested or ""


def key_of(row: Mapping[str, Any]) -> Key:
    return (
        _utc_day(row["at"]),
        row["user_id"] or 0,
        row["team_id"] or 0,
        row["provider"] or "",
        model_of(row["served_model"], row["requested_model"]),
        row["task"] or "",
        row["source"] or "",
        row["status"] or "",
    )


def _utc_day(at: datetime) -> date:
    return (at if at.tzinfo is None else at.astimezone(UTC)).date()


def _empty(username: str) -> dict[str, Any]:
    values: dict[str, Any] = dict.fromkeys(_ADDITIVE, 0)
    values["username"] = username
    values["max_prompt_tokens"] = 0
    return values


def accumulate(rows: Iterable[Mapping[str, Any]]) -> dict[Key, dict[str, Any]]:
    """Sum request rows (ledger column names) into rollup measures per key."""
    out: dict[Key, dict[str, Any]] = {}
    for row in rows:
        key = key_of(row)
        acc = out.get(key)
        if acc is None:
            acc = out[key] = _empty(row["username"] or "")
        prompt = int(row["prompt_tokens"] or 0)
        completion = int(row["completion_tokens"] or 0)
        cost = row["cost_micros"]
        priced = bool(row["priced"]) and cost is not None
        acc["requests"] += 1
        acc["fallbacks"] += 1 if row["fallback_used"] else 0
        acc["prompt_tokens"] += prompt
        acc["completion_tokens"] += completion
        if priced:
            acc["cost_micros"] += int(cost)
            acc["priced_requests"] += 1
            acc["priced_tokens"] += prompt + completion
        else:
            acc["unpriced_requests"] += 1
        acc["max_prompt_tokens"] = max(acc["max_prompt_tokens"], prompt)
        if row["status"] in SUCCESS_STATUSES:
            latency = int(row["latency_ms"] or 0)
            acc["latency_sum_ms"] += latency
            acc["latency_n"] += 1
            acc[histogram.latency_column(histogram.bucket_of(latency))] += 1
            ttft = row["ttft_ms"]
            if ttft is not None:
                acc["ttft_sum_ms"] += int(ttft)
                acc["ttft_n"] += 1
                acc[histogram.ttft_column(histogram.bucket_of(int(ttft)))] += 1
    return out


def _build_upsert(dialect: str) -> Any:
    table = usage_daily
    insert = pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)
    excluded = insert.excluded
    larger = func.greatest if dialect == "postgresql" else func.max  # max(a, b) is scalar
    set_: dict[str, Any] = {name: table.c[name] + excluded[name] for name in _ADDITIVE}
    set_["max_prompt_tokens"] = larger(table.c.max_prompt_tokens, excluded.max_prompt_tokens)
    set_["username"] = excluded.username
    return insert.on_conflict_do_update(index_elements=list(USAGE_DAILY_DIMENSIONS), set_=set_)


# Built once: constructing ~100 SET expressions cost ~9 ms per ledger batch.
_UPSERTS: Final = MappingProxyType(
    {dialect: _build_upsert(dialect) for dialect in ("sqlite", "postgresql")}
)


def _dialect(target: Session | Connection) -> str:
    bind = target.get_bind() if isinstance(target, Session) else target
    return bind.dialect.name


def write(target: Session | Connection, sums: Mapping[Key, Mapping[str, Any]]) -> None:
    """Upsert summed measures; keys sorted so concurrent writers lock rows in one order."""
    if not sums:
        return
    params = [
        dict(zip(USAGE_DAILY_DIMENSIONS, key, strict=True)) | dict(values)
        for key, values in sorted(sums.items())
    ]
    target.execute(_UPSERTS[_dialect(target)], params)


def apply(target: Session | Connection, request_rows: Iterable[Mapping[str, Any]]) -> None:
    """Add freshly inserted ``requests`` rows to the rollups (caller's transaction)."""
    write(target, accumulate(request_rows))


def retract(target: Session | Connection, request_rows: Iterable[Mapping[str, Any]]) -> None:
    """Take deleted ``requests`` rows back out of the rollups (caller's transaction).

    Only replaced ``interrupted`` rows are ever deleted; they carry no tokens, so the
    largest prompt stays right. A key left with no requests is removed.
    """
    sums = accumulate(request_rows)
    if not sums:
        return
    for values in sums.values():
        for name in _ADDITIVE:
            values[name] = -values[name]
    write(target, sums)
    target.execute(delete(usage_daily).where(usage_daily.c.requests <= 0))


def rebuild(conn: Connection | Session, batch: int = 50_000) -> int:
    """Recompute every rollup from the raw ledger; returns the number of requests read."""
    conn.execute(delete(usage_daily))
    columns = [_REQ.c[name] for name in SOURCE_COLUMNS]
    query = select(*columns).order_by(_REQ.c.at, _REQ.c.id)
    sums: dict[Key, dict[str, Any]] = {}
    read = 0
    result = conn.execute(query)
    while chunk := result.fetchmany(batch):
        rows = [dict(zip(SOURCE_COLUMNS, r, strict=True)) for r in chunk]
        read += len(rows)
        for key, values in accumulate(rows).items():
            acc = sums.get(key)
            if acc is None:
                sums[key] = values
                continue
            for name in _ADDITIVE:
                acc[name] += values[name]
            acc["max_prompt_tokens"] = max(acc["max_prompt_tokens"], values["max_prompt_tokens"])
    write(conn, sums)
    return read
