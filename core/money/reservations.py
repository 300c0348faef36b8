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

A hold whose request's outcome is unknown (its process died, its row was lost) never
expires to $0 spent: after ``ttl`` the hold is *charged* as spend and the request gets an
``interrupted`` ledger row with the held worst case as an estimated cost
(core/money/orphans.py). The charge is kept on the row (``charged_micros``), so a late
settle, such as a journal replay with the real figures, refunds it and adds the real
cost instead. Settling deletes the rows, which makes it idempotent.

This is separate from :mod:`core.money.budgets` (setting, listing and reporting budgets) because
every gateway request runs it: it imports that module for the shared vocabulary, never
the reverse.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import case, delete, or_, select, update
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
    trace: Mapping[str, Any] | None = None,
) -> ReservationHandle:
    """Hold worst-case amounts (provider -> micro-dollars; None = unpriced), or refuse.

    Raises BudgetExceeded, holding nothing, if any hard budget cannot take its hold.
    ``unpriced_models`` only names the culprits in that message. ``trace`` (who, which
    source and model) is kept on the hold so that, should the request's outcome be lost,
    the hold can become an ``interrupted`` ledger row (core/money/orphans.py).
    """
    if any(a is not None and a < 0 for a in amounts.values()):
        raise ValueError("reservation amounts must be non-negative")
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
                    trace=dict(trace) if trace else None,
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
    scopes = {h.budget_id: (h.scope, h.scope_key) for h in handle.holds}
    settle_request(session, handle.request_id, actual_by_provider, now, scopes)


def settle_request(
    session: Session,
    request_id: str,
    actual_by_provider: Mapping[str, int],
    now: datetime,
    scopes: Mapping[int, tuple[str, str]] | None = None,
) -> None:
    """Settle every hold of ``request_id`` (``scopes``: budget id -> scope, when known).

    A hold already charged as an interrupted request's estimate is refunded here, in the
    month it was charged, so the real cost replaces the estimate rather than adding to it.
    """
    # RETURNING says what each row still held (0 once charged) and what it was charged.
    found = (
        session.connection()
        .execute(
            delete(Reservation)
            .where(Reservation.request_id == request_id)
            .returning(
                Reservation.budget_id,
                Reservation.amount_micros,
                Reservation.charged_micros,
                Reservation.period,
            )
        )
        .all()
    )
    period = period_of(now)
    held: dict[int, int] = defaultdict(int)
    refund: dict[int, int] = defaultdict(int)
    for budget_id, amount, charged, hold_period in found:
        held[budget_id] += amount
        if hold_period == period:  # a charge in a closed month stays in that month
            refund[budget_id] += charged
    known = dict(scopes or {})
    if held.keys() - known.keys():  # holds made through another handle of this request
        known.update(
            (i, (s, k))
            for i, s, k in session.execute(
                select(Budget.id, Budget.scope, Budget.scope_key).where(Budget.id.in_(list(held)))
            )
        )
    total = sum(actual_by_provider.values())
    for budget_id in sorted(held):  # id order, like reserve: no lock-order deadlocks
        scope, key = known[budget_id]
        spent = actual_by_provider.get(key, 0) if scope == "provider" else total
        if held[budget_id] or spent or refund[budget_id]:
            account(session, budget_id, held[budget_id], spent - refund[budget_id], period, now)


def account(
    session: Session, budget_id: int, held: int, spent: int, period: str, now: datetime
) -> None:
    """Release ``held`` and add ``spent`` (negative: a refund) in one UPDATE, rolling the
    month over if due."""
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
        if spent > 0 and after * 100 >= threshold and (before == 0 or before * 100 < threshold):
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
