"""Budgets in a viewer's scope, with a month-end projection at the current pace.

Pace is the budget's spend so far this month divided by the time elapsed since the
month began (to the second), so a quiet weekend lowers it and a busy morning raises
it. The projected month-end spend is that pace times the month's length; the run-out
day is when the pace reaches the limit, if that happens within the month. All money is
integer micro-dollars; the projection rounds down to the micro-dollar.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.analytics.scope import Scope
from core.money import budgets
from core.money.budgets import BudgetInfo
from core.store.tables import User, usage_daily

THRESHOLDS = budgets.ALERT_THRESHOLDS  # (80, 100) percent


@dataclass(frozen=True, slots=True)
class Forecast:
    budget: BudgetInfo
    percent: float  # spent / limit * 100 (inf for a zero limit with spend)
    projected_micros: int  # month-end spend at the current pace
    run_out_day: date | None  # None: the pace stays under the limit this month
    reached: int | None  # the highest threshold reached (80 or 100), if any

    @property
    def label(self) -> str:
        return self.budget.label


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = datetime.combine(
        budgets.reset_date(budgets.period_of(now)), datetime.min.time(), tzinfo=UTC
    )
    return start, end


def forecast(budget: BudgetInfo, now: datetime) -> Forecast:
    start, end = month_bounds(now)
    elapsed = int((now - start).total_seconds())
    month = int((end - start).total_seconds())
    spent, limit = budget.spent_micros, budget.limit_micros
    projected = spent * month // elapsed if elapsed > 0 else spent
    run_out: date | None = None
    if spent >= limit and limit > 0:
        run_out = now.date()  # already there: today at the latest
    elif spent > 0 and elapsed > 0:
        seconds = limit * elapsed // spent  # when the pace reaches the limit
        if seconds < month:
            run_out = (start + timedelta(seconds=seconds)).date()
    percent = spent * 100 / limit if limit else (float("inf") if spent else 0.0)
    reached = max((t for t in THRESHOLDS if percent >= t), default=None)
    return Forecast(budget, percent, projected, run_out, reached)


def budgets_in_scope(session: Session, scope: Scope, now: datetime) -> list[BudgetInfo]:
    """Admins: every budget. Managers: their team's and its members'. Members: theirs."""
    every = budgets.list_budgets(session, now)
    if scope.kind == "all":
        return every
    if scope.kind == "team":
        members = {
            str(i) for i in session.scalars(select(User.id).where(User.team_id == scope.team_id))
        }
    else:
        members = {str(scope.user_id)}
    team = str(scope.team_id) if scope.team_id is not None else None
    return [
        b
        for b in every
        if (b.scope == "user" and b.scope_key in members)
        or (b.scope == "team" and b.scope_key == team)
    ]


def burn_down(session: Session, budget: BudgetInfo, now: datetime) -> pd.DataFrame:
    """Cumulative recorded spend per day of the budget's month, from the rollups.

    Columns: day, spent_micros (cumulative). Provider budgets count that provider's spend.
    """
    c = usage_daily.c
    start, _ = month_bounds(now)
    subject = {"user": c.user_id, "team": c.team_id, "provider": c.provider}[budget.scope]
    key: int | str = budget.scope_key if budget.scope == "provider" else int(budget.scope_key)
    rows = session.execute(
        select(c.day, func.sum(c.cost_micros))
        .where(c.day >= start.date(), c.day <= now.date(), subject == key)
        .group_by(c.day)
        .order_by(c.day)
    ).all()
    frame = pd.DataFrame([(d, int(v)) for d, v in rows], columns=["day", "spent_micros"])
    frame["spent_micros"] = frame["spent_micros"].cumsum()
    return frame
