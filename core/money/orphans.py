"""Requests whose outcome is unknown: their holds are charged, never expired to $0 spent.

A request's outcome is lost when the process serving it dies (SIGKILL, a crash, the
machine) or when its finished row never reaches the database. Two traces survive it:

* its budget hold (``reservations``), made before its first upstream call;
* its ``open`` record in the dead process's ledger journal (core/store/journal.py).

Either way the request becomes a ledger row with status ``interrupted`` and an
**estimated** cost: the worst case it held (or, with no budget, the worst case its
journal record noted). Its holds are charged to their budgets as spend, so a hard budget
cannot be overspent through lost rows. When the real row turns up later (a journal
replay), :func:`core.money.reservations.settle_request` refunds the charge and
core/store/ledger.py replaces the estimated row: nothing is counted twice.

The sweep (:func:`expire_due`) runs on its own schedule in every API or dashboard
process (core/gateway/upkeep.py), and before a reservation when one is due.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from core.money.budgets import period_of
from core.money.reservations import account, settle_request
from core.request import STATUS_INTERRUPTED
from core.store import ledger
from core.store.tables import Reservation

# Charged holds are kept until their month is long over, so a late replay still finds
# (and refunds) the estimate; released ones only for a day, as before.
TOMBSTONE_GRACE: Final = timedelta(days=1)
CHARGED_GRACE: Final = timedelta(days=40)
_EXPIRE_BATCH: Final = 500
ERROR_MESSAGE: Final = (
    "The request's outcome is unknown: the process serving it stopped, or its ledger row "
    "was lost. The cost shown is the worst case it held, an estimate, until the real "
    "figures arrive from the ledger journal."
)
log = logging.getLogger("switchboard.budgets")  # the name operators already filter on


@dataclass(frozen=True, slots=True)
class Orphan:
    """A request to record as interrupted: its trace (who, what) and its own estimate."""

    request_id: str
    at: datetime
    trace: Mapping[str, Any]
    estimate_micros: int | None  # None: unpriced, or nothing noted


def interrupt(session: Session, orphans: Sequence[Orphan], now: datetime) -> int:
    """Charge the orphans' open holds and give each an ``interrupted`` row; returns rows added.

    Idempotent: a request that already has a row (real or interrupted) gets none, and a
    hold already charged is not charged again.
    """
    if not orphans:
        return 0
    ids = [o.request_id for o in orphans]
    recorded = ledger.statuses(session, ids)
    for request_id, status in recorded.items():
        if status != STATUS_INTERRUPTED:  # its outcome is known after all: just release
            settle_request(session, request_id, {}, now)
    unknown = [i for i in ids if recorded.get(i, STATUS_INTERRUPTED) == STATUS_INTERRUPTED]
    charged = _charge_holds(session, unknown, now)
    rows = []
    for orphan in orphans:
        if orphan.request_id in recorded:
            continue
        held = charged.get(orphan.request_id)
        noted = orphan.estimate_micros
        estimate = max(held, noted or 0) if held is not None else noted
        rows.append(_row(orphan, estimate))
        recorded[orphan.request_id] = STATUS_INTERRUPTED
    ledger.insert_rows(session, rows, [])
    return len(rows)


def _charge_holds(session: Session, request_ids: Sequence[str], now: datetime) -> dict[str, int]:
    """Move the requests' open holds from reserved to spent; request -> its worst case.

    A request's worst case is what its most-held budget held (the user's budget holds
    every candidate the request reserved for). Holds charged before count too.
    """
    found = session.execute(
        select(
            Reservation.id,
            Reservation.request_id,
            Reservation.budget_id,
            Reservation.amount_micros,
            Reservation.charged_micros,
        )
        .where(Reservation.request_id.in_(list(request_ids)))
        .order_by(Reservation.id)
    ).all()
    per_budget: dict[tuple[str, int], int] = defaultdict(int)
    moved: dict[int, int] = defaultdict(int)
    for res_id, request_id, budget_id, amount, already in found:
        if amount > 0 and _claim(session, res_id, amount):
            moved[budget_id] += amount
            already += amount
        per_budget[(request_id, budget_id)] += already
    period = period_of(now)
    for budget_id in sorted(moved):  # id order, like reserve: no lock-order deadlocks
        account(session, budget_id, moved[budget_id], moved[budget_id], period, now)
    worst: dict[str, int] = {}
    for (request_id, _), amount in per_budget.items():
        worst[request_id] = max(worst.get(request_id, 0), amount)
    return worst


def _claim(session: Session, reservation_id: int, amount: int) -> bool:
    """Turn one hold into a charge; False when a settle got there first."""
    result = session.connection().execute(
        update(Reservation)
        .where(Reservation.id == reservation_id, Reservation.amount_micros == amount)
        .values(amount_micros=0, charged_micros=Reservation.charged_micros + amount)
    )
    return bool(result.rowcount)


def _row(orphan: Orphan, estimate: int | None) -> dict[str, Any]:
    trace = orphan.trace

    def text(name: str, limit: int, default: str | None = None) -> str | None:
        value = trace.get(name, default)
        return None if value is None else str(value)[:limit]

    return {
        "id": orphan.request_id,
        "at": orphan.at,
        "user_id": trace.get("user_id"),
        "username": text("username", 64, "(unknown)"),
        "team_id": trace.get("team_id"),
        "source": text("source", 16, "api"),
        "task": text("task", 64, ""),
        "profile": text("profile", 64),
        "conversation_id": text("conversation_id", 64),
        "token_name": text("token_name", 64),
        "requested_model": text("requested_model", 200, ""),
        "served_model": None,
        "provider": text("provider", 64),
        "route_source": text("route_source", 32, "unknown"),
        "chain": list(trace.get("chain") or []),
        "order_reason": None,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
        "cost_micros": estimate,
        "priced": estimate is not None,
        "price_version": None,
        "latency_ms": 0,
        "ttft_ms": None,
        "status": STATUS_INTERRUPTED,
        "fallback_used": False,
        "finish_reason": None,
        "error_class": "Interrupted",
        "error_message": ERROR_MESSAGE,
        "attempt_count": 0,
        "request_metadata": None,
        "estimated": True,
    }


def expire_reservations(session: Session, now: datetime) -> int:
    """Charge holds past their expiry as interrupted requests; returns how many holds."""
    due = session.execute(
        select(
            Reservation.request_id,
            Reservation.created_at,
            Reservation.trace,
        )
        .where(Reservation.expires_at < now, Reservation.amount_micros > 0)
        .order_by(Reservation.id)
        .limit(_EXPIRE_BATCH)
    ).all()
    orphans: dict[str, Orphan] = {}
    for request_id, created_at, trace in due:
        if request_id not in orphans:
            orphans[request_id] = Orphan(request_id, created_at, trace or {}, None)
    before = _open_holds(session, list(orphans))
    interrupt(session, list(orphans.values()), now)
    session.connection().execute(
        delete(Reservation).where(
            Reservation.expires_at < now - TOMBSTONE_GRACE,
            Reservation.amount_micros == 0,
            Reservation.charged_micros == 0,
        )
    )
    session.connection().execute(
        delete(Reservation).where(
            Reservation.expires_at < now - CHARGED_GRACE, Reservation.amount_micros == 0
        )
    )
    return before


def _open_holds(session: Session, request_ids: Sequence[str]) -> int:
    if not request_ids:
        return 0
    query = select(Reservation.id).where(
        Reservation.request_id.in_(list(request_ids)), Reservation.amount_micros > 0
    )
    return len(session.execute(query).all())


def expire_due(session_factory: sessionmaker[Session], now: datetime) -> int:
    """The sweep: one probe of the expiry index, and a writing pass only when one is due."""
    with session_factory() as session:
        due = session.scalar(
            select(Reservation.id)
            .where(Reservation.expires_at < now, Reservation.amount_micros > 0)
            .limit(1)
        )
    if due is None:
        return 0
    try:
        with session_factory.begin() as session:
            return expire_reservations(session, now)
    except DBAPIError as exc:  # housekeeping (e.g. a deadlock with a settle) must not fail
        log.warning("charging expired holds failed; the next sweep retries: %s", exc)
        return 0
