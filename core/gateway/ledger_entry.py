"""One finished request as the ledger writes it: rows plus budget settlement, replayable.

A ``LedgerEntry`` is everything one transaction writes for a request: its ``requests`` row
and ``attempts`` rows, the budget settlement (spend per provider), the rate-limit
correction and the key bookkeeping. It turns into a JSON payload and back, so an entry
the database did not take can wait in the journal (core/store/journal.py) and be written
later by :func:`write_entries`, the one write path for live batches and replays alike.

``write_entries`` is idempotent by request id: an entry whose request already has a real
row is skipped whole (its settlement committed with that row). A request recorded as
``interrupted`` (an estimate, core/money/orphans.py) has that row replaced, and the
estimate charged to its budgets is refunded for the real cost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from core.accounts import keys
from core.money import orphans, ratelimits, reservations
from core.money.reservations import ReservationHandle
from core.request import STATUS_INTERRUPTED, ChatRequest, Summary
from core.store import ledger

_TIMES = ("at",)  # the datetime columns of requests and attempts rows


@dataclass(frozen=True)
class LedgerEntry:
    request_id: str
    request_row: dict[str, Any]
    attempt_rows: list[dict[str, Any]]
    spend: dict[str, int]  # provider -> micro-dollars, for the budget settlement
    settle: bool  # the request held budget
    user_id: int | None
    at: datetime  # when the request started: its rate-limit minute, its keys' last use
    rate_correction: int = 0  # actual tokens minus those a per-minute limit counted
    key_events: tuple[tuple[int, str], ...] = ()


def entry_for(
    request: ChatRequest,
    summary: Summary,
    spend: Mapping[str, int],
    holds: Sequence[ReservationHandle],
    key_events: Sequence[tuple[int, str]],
    at: datetime,
    rate_correction: int = 0,
) -> LedgerEntry:
    row, attempts = ledger.row_values(request, summary, at)
    return LedgerEntry(
        summary.request_id,
        row,
        attempts,
        dict(spend),
        any(h.holds for h in holds),
        request.caller.user_id,
        at,
        rate_correction,
        tuple(key_events),
    )


def _dump_times(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if k in _TIMES else v for k, v in row.items()}


def _load_times(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: datetime.fromisoformat(v) if k in _TIMES else v for k, v in row.items()}


def to_payload(entry: LedgerEntry) -> dict[str, Any]:
    """The entry as JSON-ready values, for the journal."""
    return {
        "request": _dump_times(entry.request_row),
        "attempts": [_dump_times(a) for a in entry.attempt_rows],
        "spend": entry.spend,
        "settle": entry.settle,
        "user_id": entry.user_id,
        "at": entry.at.isoformat(),
        "rate_correction": entry.rate_correction,
        "key_events": [list(e) for e in entry.key_events],
    }


def from_payload(request_id: str, payload: Mapping[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        request_id,
        _load_times(payload["request"]),
        [_load_times(a) for a in payload["attempts"]],
        {str(k): int(v) for k, v in payload["spend"].items()},
        bool(payload["settle"]),
        payload["user_id"],
        datetime.fromisoformat(payload["at"]),
        int(payload["rate_correction"]),
        tuple((int(k), str(e)) for k, e in payload["key_events"]),
    )


def orphan_from(request_id: str, trace: Mapping[str, Any]) -> orphans.Orphan:
    """A journal ``open`` record (see Gateway's trace) as a request to record interrupted."""
    estimate = trace.get("estimate_micros")
    return orphans.Orphan(
        request_id,
        datetime.fromisoformat(trace["at"]),
        trace,
        None if estimate is None else int(estimate),
    )


def write_entries(
    session: Session, entries: Sequence[LedgerEntry], now: datetime, *, check: bool = True
) -> None:
    """Write entries in the caller's transaction, each request once (see the module doc).

    ``check=False`` is the live writer's fast path, which skips the look-up: its requests
    are new, and should one already have a row the insert fails, the batch goes to the
    journal, and the replay, which checks, reconciles it.
    """
    unique: dict[str, LedgerEntry] = {}
    for entry in entries:
        unique.setdefault(entry.request_id, entry)
    recorded = ledger.statuses(session, list(unique)) if check else {}
    fresh = [
        e
        for e in unique.values()
        if recorded.get(e.request_id, STATUS_INTERRUPTED) == STATUS_INTERRUPTED
    ]
    replaced = {e.request_id for e in fresh if e.request_id in recorded}
    ledger.remove_interrupted(session, sorted(replaced))
    ledger.insert_rows(
        session, [e.request_row for e in fresh], [a for e in fresh for a in e.attempt_rows]
    )
    for e in fresh:
        if e.settle or e.request_id in replaced:
            reservations.settle_request(session, e.request_id, e.spend, now)
        if e.rate_correction and e.user_id is not None:
            ratelimits.correct_tokens(session, e.user_id, e.at, e.rate_correction)
        for key_id, event in e.key_events:
            if event == "used":
                keys.mark_key_used(session, key_id, e.at)
            else:
                keys.mark_key_auth_failed(session, key_id, e.at)
