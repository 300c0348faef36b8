"""This month's spend and the unpriced models in use, read from the ledger for settings pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from core.money import budgets
from core.money.budgets import BudgetInfo
from core.store.tables import RequestRow


@dataclass(frozen=True)
class MonthSpend:
    micros: int  # priced requests only
    requests: int
    unpriced_requests: int  # their cost is unknown, never counted as $0


@dataclass(frozen=True)
class UnpricedModel:
    model: str
    requests: int
    last_used: datetime


def month_start(now: datetime) -> datetime:
    utc = now.astimezone(UTC)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


def spend_this_month(session: Session, user_id: int, now: datetime) -> MonthSpend:
    row = session.execute(
        select(
            func.coalesce(func.sum(RequestRow.cost_micros), 0),
            func.count(),
            func.sum(case((RequestRow.priced.is_(False), 1), else_=0)),
        ).where(RequestRow.user_id == user_id, RequestRow.at >= month_start(now))
    ).one()
    return MonthSpend(int(row[0] or 0), int(row[1] or 0), int(row[2] or 0))


@dataclass(frozen=True)
class Standing:
    """One person's month: one spent figure, whichever way it is shown.

    With a budget, the spent figure is the budget's own count (what its limit is held
    against), so "spent" and "left" always add up; without one, the ledger's.
    """

    spent_micros: int
    requests: int
    unpriced_requests: int
    budget: BudgetInfo | None

    @property
    def share_used(self) -> float | None:
        """Spent (plus holds in progress) over the limit; None without a budget."""
        if self.budget is None:
            return None
        used = self.budget.spent_micros + self.budget.reserved_micros
        if not self.budget.limit_micros:
            return float("inf") if used else 0.0
        return used / self.budget.limit_micros


def standing(session: Session, user_id: int, now: datetime) -> Standing:
    month = spend_this_month(session, user_id, now)
    mine = budgets.get_budget(session, "user", str(user_id), now)
    spent = mine.spent_micros if mine is not None else month.micros
    return Standing(spent, month.requests, month.unpriced_requests, mine)


def unpriced_in_use(session: Session, since: datetime) -> list[UnpricedModel]:
    """Models that answered requests without a price since ``since``, most used first."""
    rows = session.execute(
        select(RequestRow.served_model, func.count(), func.max(RequestRow.at))
        .where(
            RequestRow.at >= since,
            RequestRow.priced.is_(False),
            RequestRow.served_model.is_not(None),
        )
        .group_by(RequestRow.served_model)
        .order_by(func.count().desc(), RequestRow.served_model)
    ).all()
    result = []
    for model, count, last in rows:
        if isinstance(last, str):  # aggregates skip the column type on some drivers
            last = datetime.fromisoformat(last)
        last = last.replace(tzinfo=UTC) if last.tzinfo is None else last
        result.append(UnpricedModel(str(model), int(count), last))
    return result
