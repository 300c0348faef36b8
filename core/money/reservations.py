"""Budget reservations: the per-request hot path that holds and settles money.

A request first *reserves* its worst-case cost against every budget that applies (the
caller's, their team's, each candidate provider's). Each hold is one conditional UPDATE,
so the database decides atomically whether it fits: no replica reads a total and then
writes it, and no in-process lock is involved. Budgets are updated in id order, so two
requests never wait on each other in opposite orders. When the request ends it *settles*:
the holds are released and the actual spend added, in one transaction.

Invariant: ``budgets.reserved_micros`` equals the sum of its open ``reservations`` rows.
That is why a month rollover resets ``spent_micros`` but keeps ``reserved_micros``:
requests still in flight hold real money until they settle or their hold expires.
Rollover only moves a period forward (``period < :current``), so replicas whose clocks
disagree around midnight can never reset a month twice.

A crashed request's hold expires after ``ttl``: expiry zeroes the row's amount (the hold
is released) but keeps the row for :data:`TOMBSTONE_GRACE`, so a slow request that settles
late still records its spend. Settling deletes the rows, which makes it idempotent.

This is separate from :mod:`core.money.budgets` (setting, listing and reporting budgets) because
every gateway request runs it: it imports that module for the shared vocabulary, never
the reverse.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import ColumnElement, Executable

from core.errors import BudgetExceeded
from core.money.budgets import (
    ALERT_THRESHOLDS,
    BudgetInfo,
    period_of,
    record_alert,
    reset_date,
    scope_label,
    usd,
)
from core.request import Caller
from core.store.tables import Budget, Reservation

DEFAULT_TTL: Final = timedelta(minutes=10)
TOMBSTONE_GRACE: Final = timedelta(days=1)
_EXPIRE_BATCH: Final = 500
log = logging.getLogger("switchboard.budgets")  # the name operators already filter on


@dataclass(frozen=True, slots=True)
class Hold:
    reservation_id: int
    budget_id: int
    scope: str
    scope_key: str
    amount_micros: int


@dataclass(frozen=True, slots=True)
class ReservationHandle:
    request_id: str
    holds: tuple[Hold, ...]


def _write(session: Session, statement: Executable) -> int:
    """Run an UPDATE or DELETE in the session's transaction; returns the rows it matched."""
    return session.connection().execute(statement).rowcount


def _describe(session: Session, row: Budget, caller: Caller) -> str:
    """The budget in words, from the caller's point of view."""
    if row.scope == "provider":
        return f"the {row.scope_key} budget"
    if row.scope == "user" and row.scope_key == str(caller.user_id):
        return "your monthly budget"
    name = scope_label(session, row.scope, row.scope_key)
    return f"{name.removeprefix('user ')}'s monthly budget"


def _exceeded(session: Session, budget_id: int, amount: int, caller: Caller) -> BudgetExceeded:
    row = session.get(Budget, budget_id, populate_existing=True)
    assert row is not None  # we just updated it (or tried to) in this transaction
    held = (
        f" and {usd(row.reserved_micros)} is held by requests in progress"
        if (row.reserved_micros)
        else ""
    )
    return BudgetExceeded(
        f"This request could cost up to {usd(amount)}, which would exceed "
        f"{_describe(session, row, caller)}: {usd(row.limit_micros)} a month, of which "
        f"{usd(row.spent_micros)} is spent{held}. It resets on "
        f"{reset_date(row.period).isoformat()}. Ask an admin to raise it, or choose a "
        "cheaper model or a lower max_tokens."
    )


def _roll_over(session: Session, budget_id: int, period: str, now: datetime) -> None:
    _write(
        session,
        update(Budget)
        .where(Budget.id == budget_id, Budget.period < period)
        .values(period=period, spent_micros=0, updated_at=now),
    )


def _amount_for(row: Budget, amounts: Mapping[str, int | None]) -> int | None:
    if row.scope == "provider":
        return amounts.get(row.scope_key)
    values = list(amounts.values())  # user and team budgets hold the dearest candidate
    return None if None in values else max((v for v in values if v is not None), default=0)


def _scopes(caller: Caller, providers: Collection[str]) -> list[ColumnElement[bool]]:
    scopes: list[ColumnElement[bool]] = [
        (Budget.scope == "user") & (Budget.scope_key == str(caller.user_id))
    ]
    if caller.team_id is not None:
        scopes.append((Budget.scope == "team") & (Budget.scope_key == str(caller.team_id)))
    if providers:
        scopes.append((Budget.scope == "provider") & Budget.scope_key.in_(list(providers)))
    return scopes


def any_apply(session: Session, caller: Caller, providers: Collection[str]) -> bool:
    """Does any budget cover this caller or these providers? (Lets callers skip reserve.)"""
    query = select(Budget.id).where(or_(*_scopes(caller, providers))).limit(1)
    return session.scalar(query) is not None


def reserve(
    session_factory: sessionmaker[Session],
    *,
    request_id: str,
    caller: Caller,
    amounts: Mapping[str, int | None],
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
    unpriced_models: Sequence[str] = (),
) -> ReservationHandle:
    """Hold worst-case amounts (provider -> micro-dollars; None = unpriced), or refuse.

    Raises BudgetExceeded, holding nothing, if any hard budget cannot take its hold.
    ``unpriced_models`` only names the culprits in that message.
    """
    if any(a is not None and a < 0 for a in amounts.values()):
        raise ValueError("reservation amounts must be non-negative")
    _expire_if_due(session_factory, now)
    period = period_of(now)
    scopes = _scopes(caller, list(amounts))
    with session_factory.begin() as session:
        # This read only finds the budgets; every decision below is a conditional UPDATE.
        # (On SQLite the first UPDATE takes the write lock, waiting up to busy_timeout.)
        rows = list(session.scalars(select(Budget).where(or_(*scopes)).order_by(Budget.id)))
        wanted = [(row, _amount_for(row, amounts)) for row in rows]
        for row, amount in wanted:
            if amount is None and row.hard:
                names = ", ".join(unpriced_models) or "A candidate model"
                raise BudgetExceeded(
                    f"{names} has no price, so it cannot run under a hard budget "
                    f"({_describe(session, row, caller)}). An admin can set its price on "
                    "Admin → Prices, or choose a priced model."
                )
        holds: list[Reservation] = []
        for row, amount in wanted:
            hold = amount or 0  # a soft budget holds nothing for an unpriced model
            if hold:
                if row.period < period:  # periods only move forward, so a current read is final
                    _roll_over(session, row.id, period, now)
                fits = _write(
                    session,
                    update(Budget)
                    .where(
                        Budget.id == row.id,
                        Budget.period >= period,  # the counters belong to this month (or later)
                        or_(
                            Budget.hard.is_(False),
                            Budget.spent_micros + Budget.reserved_micros + hold
                            <= Budget.limit_micros,
                        ),
                    )
                    .values(reserved_micros=Budget.reserved_micros + hold, updated_at=now),
                )
                if not fits:
                    raise _exceeded(session, row.id, hold, caller)  # rolls everything back
            holds.append(
                Reservation(
                    request_id=request_id,
                    budget_id=row.id,
                    period=period,
                    amount_micros=hold,
                    created_at=now,
                    expires_at=now + ttl,
                )
            )
        session.add_all(holds)
        session.flush()
        scope_of = {row.id: (row.scope, row.scope_key) for row in rows}
        return ReservationHandle(
            request_id,
            tuple(Hold(h.id, h.budget_id, *scope_of[h.budget_id], h.amount_micros) for h in holds),
        )


def settle(
    session_factory: sessionmaker[Session],
    handle: ReservationHandle,
    actual_by_provider: Mapping[str, int],
    now: datetime,
) -> None:
    """Release the request's holds and add its actual spend, in one transaction."""
    if handle.holds:
        with session_factory.begin() as session:
            settle_in(session, handle, actual_by_provider, now)


def settle_in(
    session: Session,
    handle: ReservationHandle,
    actual_by_provider: Mapping[str, int],
    now: datetime,
) -> None:
    """Settle inside the caller's transaction (e.g. with the request's ledger rows).

    Settling is per request: it settles every hold of ``handle.request_id`` (a request
    that reserved once per candidate has several handles) with the request's whole spend,
    provider -> micro-dollars. Any later settle of that request finds nothing and does
    nothing, which is what makes settling idempotent.
    """
    if not handle.holds:
        return
    # RETURNING says what each row still held: 0 once expiry released it, and then its
    # spend still counts.
    found = (
        session.connection()
        .execute(
            delete(Reservation)
            .where(Reservation.request_id == handle.request_id)
            .returning(Reservation.budget_id, Reservation.amount_micros)
        )
        .all()
    )
    held: dict[int, int] = defaultdict(int)
    for budget_id, amount in found:
        held[budget_id] += amount
    scopes = {h.budget_id: (h.scope, h.scope_key) for h in handle.holds}
    if held.keys() - scopes.keys():  # holds made through another handle of this request
        scopes.update(
            (i, (s, k))
            for i, s, k in session.execute(
                select(Budget.id, Budget.scope, Budget.scope_key).where(Budget.id.in_(list(held)))
            )
        )
    period, total = period_of(now), sum(actual_by_provider.values())
    for budget_id in sorted(held):  # id order, like reserve: no lock-order deadlocks
        scope, key = scopes[budget_id]
        spent = actual_by_provider.get(key, 0) if scope == "provider" else total
        if held[budget_id] or spent:
            _account(session, budget_id, held[budget_id], spent, period, now)


def _account(
    session: Session, budget_id: int, held: int, spent: int, period: str, now: datetime
) -> None:
    """Release ``held`` and add ``spent`` in one UPDATE, rolling the month over if due."""
    rolled = Budget.period < period  # SET expressions all see the row as it was
    row = (
        session.connection()
        .execute(
            update(Budget)
            .where(Budget.id == budget_id)
            .values(
                reserved_micros=Budget.reserved_micros - held,
                spent_micros=case((rolled, spent), else_=Budget.spent_micros + spent),
                period=case((rolled, period), else_=Budget.period),
                updated_at=now,
            )
            .returning(
                Budget.scope,
                Budget.scope_key,
                Budget.limit_micros,
                Budget.spent_micros,
                Budget.hard,
                Budget.period,
            )
        )
        .one()
    )
    before, after = row.spent_micros - spent, row.spent_micros
    for percent in ALERT_THRESHOLDS:
        # Only the settle that crosses a threshold alerts (the unique key backs this up).
        threshold = row.limit_micros * percent
        if spent and after * 100 >= threshold and (before == 0 or before * 100 < threshold):
            info = BudgetInfo(
                budget_id,
                row.scope,
                row.scope_key,
                scope_label(session, row.scope, row.scope_key),
                row.limit_micros,
                after,
                0,
                row.period,
                row.hard,
                reset_date(row.period),
            )
            record_alert(session, info, percent, now)


def release(
    session_factory: sessionmaker[Session], handle: ReservationHandle, now: datetime
) -> None:
    """Give the holds back without spending (the request never reached a provider)."""
    settle(session_factory, handle, {}, now)


def _expire_if_due(session_factory: sessionmaker[Session], now: datetime) -> None:
    # One probe of the expires_at index; the writing pass runs only when something is due.
    with session_factory() as session:
        due = session.scalar(
            select(Reservation.id)
            .where(Reservation.expires_at < now, Reservation.amount_micros > 0)
            .limit(1)
        )
    if due is None:
        return
    try:
        with session_factory.begin() as session:
            expire_reservations(session, now)
    except DBAPIError as exc:  # housekeeping (e.g. a deadlock with a settle) must not fail
        log.warning("expiring reservations failed; the next request retries: %s", exc)


def expire_reservations(session: Session, now: datetime) -> int:
    """Release holds past their expiry (crashed requests); returns how many were released."""
    due = session.execute(
        select(Reservation.id, Reservation.budget_id, Reservation.amount_micros)
        .where(Reservation.expires_at < now, Reservation.amount_micros > 0)
        .order_by(Reservation.id)
        .limit(_EXPIRE_BATCH)
    ).all()
    released: dict[int, int] = defaultdict(int)
    count = 0
    for reservation_id, budget_id, amount in due:
        # Conditional: a settle that got there first has already released this hold.
        if _write(
            session,
            update(Reservation)
            .where(Reservation.id == reservation_id, Reservation.amount_micros == amount)
            .values(amount_micros=0),
        ):
            released[budget_id] += amount
            count += 1
    for budget_id in sorted(released):
        _account(session, budget_id, released[budget_id], 0, period_of(now), now)
    _write(
        session,
        delete(Reservation).where(
            Reservation.expires_at < now - TOMBSTONE_GRACE, Reservation.amount_micros == 0
        ),
    )
    return count
