"""The usage ledger: one ``requests`` row per caller request, one ``attempts`` row per attempt.

Writes run inside the caller's transaction, so a request's ledger rows commit together
with its budget settlement. ``record_many`` is the gateway's batched path: two bulk
INSERTs (executemany) per batch instead of an ORM flush per object.

A request's ledger time (``requests.at``) is when it started: the first attempt's
``started_at``, or the ``now`` given when no upstream call was made (a refusal happens
at the start anyway). Deriving it from the attempts keeps batched writes correctly
timed even when a batch is flushed a moment after its requests finished.

Reads stream with keyset pagination on ``(at, id)`` so an export never loads the
whole ledger and never pays for OFFSET. Dates are UTC days.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, func, not_, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from core.request import STATUS_INTERRUPTED, Attempt, ChatRequest, Summary
from core.store import bulkinsert, rollups
from core.store.tables import AttemptRow, RequestRow

# Upstream error bodies can be huge (HTML error pages); the ledger keeps a readable head.
MAX_ERROR_CHARS = 2000
# Outcome prefixes/values for candidates that were skipped without an upstream call;
# they say nothing about a model's speed or reliability, so stats leave them out.
_NOT_CALLED_PREFIXES = ("skipped", "refused")
_NOT_CALLED = ("no-key",)

_REQUESTS = RequestRow.metadata.tables[RequestRow.__tablename__]
_ATTEMPTS = AttemptRow.metadata.tables[AttemptRow.__tablename__]


@dataclass(frozen=True)
class ModelStats:
    """How one model behaved over a recent window, for cost-optimised routing.

    ``requests`` counts upstream calls (attempts, each retry included). Latency and
    TTFT are over successful calls only: a failure's latency is its timeout or an
    instant 4xx, which says nothing about how fast the model answers.
    """

    model: str
    requests: int
    successes: int
    success_rate: float
    avg_latency_ms: float | None
    p50_latency_ms: int | None  # exact lower median via window functions (SQLite and PG)
    avg_ttft_ms: float | None


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _clip(value: str | None, limit: int) -> str | None:
    # PostgreSQL refuses over-long VARCHARs; losing a billing row over a long label is worse.
    if value is None:
        return None
    return storable(value if len(value) <= limit else value[:limit])


def storable(text: str) -> str:
    """Text every database stores: a lone surrogate (from a CLI argument or a caller's
    JSON) or a NUL (PostgreSQL refuses it) becomes U+FFFD instead of failing the batch."""
    if text.isascii() and "\x00" not in text:
        return text
    return _UNSTORABLE.sub("\ufffd", text)


def _request_time(summary: Summary, now: datetime) -> datetime:
    return min((a.started_at for a in summary.attempts), default=now)


def _first_tried(summary: Summary) -> str | None:
    called = [
        a.provider
        for a in summary.attempts
        if a.outcome not in _NOT_CALLED and not a.outcome.startswith(_NOT_CALLED_PREFIXES)
    ]
    return called[0] if called else None


def _request_values(request: ChatRequest, summary: Summary, now: datetime) -> dict[str, Any]:
    caller = request.caller
    usage = summary.usage
    error = summary.error
    priced = summary.priced and summary.cost_micros is not None
    return {
        "id": summary.request_id,
        "at": _request_time(summary, now),
        "user_id": caller.user_id,
        "username": caller.username,
        "team_id": caller.team_id,
        "source": request.source,
        "task": _clip(request.task, 64),
        "profile": _clip(request.profile, 64),
        "conversation_id": _clip(request.conversation_id, 64),
        "token_name": caller.token_name,
        "requested_model": _clip(summary.requested_model, 200),
        "served_model": _clip(summary.model, 200),
        # A request no model answered is filed under the provider first tried, so the
        # provider error-rate chart and spike alerts count it.
        "provider": _clip(summary.provider or _first_tried(summary), 64),
        "route_source": _clip(summary.route_source, 32),
        "chain": list(summary.chain),
        "order_reason": summary.order_reason,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cached_tokens": usage.cached_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        # Unpriced is NULL, never 0: a zero would read as "free" in every sum.
        "cost_micros": summary.cost_micros if priced else None,
        "priced": priced,
        "price_version": _clip(summary.price_version, 64),
        "latency_ms": summary.latency_ms,
        "ttft_ms": summary.ttft_ms,
        "status": _clip(summary.status, 32),
        "fallback_used": summary.fallback_used,
        "finish_reason": _clip(summary.finish_reason, 32),
        "error_class": _clip(type(error).__name__, 64) if error else None,
        "error_message": _clip(error.message, MAX_ERROR_CHARS) if error else None,
        "attempt_count": len(summary.attempts),
        # NULL, not {}, when nothing was sent: "no metadata" is one value in queries.
        "request_metadata": dict(request.metadata) or None,
        "estimated": False,
        "dropped_params": list(summary.dropped_params) or None,
    }


def _attempt_values(request_id: str, seq: int, attempt: Attempt) -> dict[str, Any]:
    priced = attempt.priced and attempt.cost_micros is not None
    return {
        "request_id": request_id,
        "seq": seq,
        "at": attempt.started_at,
        "model": _clip(attempt.model, 200),
        "provider": _clip(attempt.provider, 64),
        "key_source": _clip(attempt.key_source, 16),
        "outcome": _clip(attempt.outcome, 32),
        "status_code": attempt.status_code,
        "error_class": _clip(attempt.error_class, 64),
        "error_message": _clip(attempt.error_message, MAX_ERROR_CHARS),
        "latency_ms": attempt.latency_ms,
        "ttft_ms": attempt.ttft_ms,
        "prompt_tokens": attempt.usage.prompt_tokens,
        "completion_tokens": attempt.usage.completion_tokens,
        "cost_micros": attempt.cost_micros if priced else None,
        "priced": priced,
        "cached_tokens": attempt.usage.cached_tokens,
        "reasoning_tokens": attempt.usage.reasoning_tokens,
        # Like cost: an unpriced attempt names no price, whatever the caller left set.
        "price_version": _clip(attempt.price_version, 64) if priced else None,
    }


def row_values(
    request: ChatRequest, summary: Summary, now: datetime
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``requests`` row and ``attempts`` rows of one request, as ``insert_rows`` takes them."""
    return _request_values(request, summary, now), [
        _attempt_values(summary.request_id, seq, attempt)
        for seq, attempt in enumerate(summary.attempts, start=1)
    ]


def record(session: Session, request: ChatRequest, summary: Summary, now: datetime) -> None:
    """Write one request and its attempts (seq 1, 2, …) in the caller's transaction."""
    record_many(session, [(request, summary)], now)


def record_many(
    session: Session, items: Sequence[tuple[ChatRequest, Summary]], now: datetime
) -> None:
    """Write many requests with two executemany INSERTs; ``now`` dates attempt-less ones."""
    if not items:
        return
    requests = [_request_values(req, summ, now) for req, summ in items]
    attempts = [
        _attempt_values(summ.request_id, seq, attempt)
        for _, summ in items
        for seq, attempt in enumerate(summ.attempts, start=1)
    ]
    insert_rows(session, requests, attempts)


def insert_rows(
    session: Session, requests: Sequence[dict[str, Any]], attempts: Sequence[dict[str, Any]]
) -> None:
    """Insert ledger rows and add them to the daily rollups, in the caller's transaction.

    The one write path for ``requests``: the gateway and ``switchboard demo-data`` both
    come through here, so the rollups always match the raw rows.
    """
    if not requests:
        return
    conn = session.connection()
    bulkinsert.insert_rows(conn, _REQUESTS, requests)
    bulkinsert.insert_rows(conn, _ATTEMPTS, attempts)
    rollups.apply(session, requests)


def statuses(session: Session, request_ids: Sequence[str]) -> dict[str, str]:
    """The ledger status of each of these requests that has a row (the replay's check)."""
    if not request_ids:
        return {}
    query = select(RequestRow.id, RequestRow.status).where(RequestRow.id.in_(list(request_ids)))
    return {rid: status for rid, status in session.execute(query)}


def remove_interrupted(session: Session, request_ids: Sequence[str]) -> int:
    """Delete these requests' ``interrupted`` rows and take them out of the rollups.

    Called just before the real rows of the same requests are inserted, in the same
    transaction, so the estimate is replaced, never added to. Returns how many went.
    """
    if not request_ids:
        return 0
    columns = [RequestRow.__table__.c[name] for name in rollups.SOURCE_COLUMNS]
    gone = [
        dict(zip(rollups.SOURCE_COLUMNS, row, strict=True))
        for row in session.execute(
            delete(RequestRow)
            .where(RequestRow.id.in_(list(request_ids)), RequestRow.status == STATUS_INTERRUPTED)
            .returning(*columns)
        )
    ]
    rollups.retract(session, gone)
    return len(gone)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _filters(since: date | None, until: date | None, user_id: int | None) -> list[Any]:
    """WHERE terms for an inclusive range of UTC days and an optional user."""
    terms: list[Any] = []
    if since is not None:
        terms.append(RequestRow.at >= _day_start(since))
    if until is not None:
        terms.append(RequestRow.at < _day_start(until + timedelta(days=1)))
    if user_id is not None:
        terms.append(RequestRow.user_id == user_id)
    return terms


def iter_requests(
    session: Session,
    since: date | None,
    until: date | None,
    user_id: int | None = None,
    batch: int = 1000,
) -> Iterator[dict[str, Any]]:
    """Every matching request once, ordered by (at, id), fetched ``batch`` rows at a time."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    base = select(_REQUESTS).where(*_filters(since, until, user_id))
    base = base.order_by(RequestRow.at, RequestRow.id).limit(batch)
    cursor: tuple[datetime, str] | None = None
    while True:
        query = base
        if cursor is not None:
            last_at, last_id = cursor
            # Same as (at, id) > (last_at, last_id), written so the leading `at >=`
            # can range-scan ix_requests_at on SQLite and PostgreSQL alike.
            query = query.where(
                RequestRow.at >= last_at, or_(RequestRow.at > last_at, RequestRow.id > last_id)
            )
        rows = [dict(row) for row in session.execute(query).mappings()]
        yield from rows
        if len(rows) < batch:
            return
        cursor = (rows[-1]["at"], rows[-1]["id"])


def count_requests(
    session: Session, since: date | None, until: date | None, user_id: int | None = None
) -> int:
    query = select(func.count()).select_from(_REQUESTS).where(*_filters(since, until, user_id))
    return session.scalar(query) or 0


def attempts_for(session: Session, request_id: str) -> list[dict[str, Any]]:
    query = select(_ATTEMPTS).where(AttemptRow.request_id == request_id).order_by(AttemptRow.seq)
    return [dict(row) for row in session.execute(query).mappings()]


def _was_called() -> ColumnElement[bool]:
    skipped = [AttemptRow.outcome.like(f"{p}%") for p in _NOT_CALLED_PREFIXES]
    return and_(not_(or_(*skipped)), AttemptRow.outcome.not_in(_NOT_CALLED))


def recent_stats(session: Session, since: datetime) -> dict[str, ModelStats]:
    """Per-model call counts, success rate and latency over attempts since ``since``.

    Two aggregate queries: GROUP BY model for counts and averages, and a window query
    for the median, because percentile functions differ between SQLite and PostgreSQL
    while ROW_NUMBER/COUNT OVER exist on both (SQLite >= 3.25).
    """
    ok = AttemptRow.outcome == "ok"
    totals = session.execute(
        select(
            AttemptRow.model,
            func.count(),
            func.sum(case((ok, 1), else_=0)),
            func.avg(case((ok, AttemptRow.latency_ms))),
            func.avg(case((ok, AttemptRow.ttft_ms))),
        )
        # A caller's Stop says nothing about the model: it counts neither way.
        .where(AttemptRow.at >= since, _was_called(), AttemptRow.outcome != "stopped")
        .group_by(AttemptRow.model)
    ).all()
    by_model = AttemptRow.model
    ranked = (
        select(
            AttemptRow.model,
            AttemptRow.latency_ms,
            func.row_number()
            .over(partition_by=by_model, order_by=AttemptRow.latency_ms)
            .label("rn"),
            func.count().over(partition_by=by_model).label("n"),
        )
        .where(AttemptRow.at >= since, ok)
        .subquery()
    )
    medians: dict[str, int] = {
        model: latency
        for model, latency in session.execute(
            select(ranked.c.model, ranked.c.latency_ms).where(ranked.c.rn == (ranked.c.n + 1) // 2)
        )
    }
    stats: dict[str, ModelStats] = {}
    for model, calls, successes, avg_latency, avg_ttft in totals:
        stats[model] = ModelStats(
            model=model,
            requests=int(calls),
            successes=int(successes or 0),
            success_rate=(int(successes or 0) / calls) if calls else 0.0,
            avg_latency_ms=None if avg_latency is None else float(avg_latency),
            p50_latency_ms=medians.get(model),
            avg_ttft_ms=None if avg_ttft is None else float(avg_ttft),
        )
    return stats
