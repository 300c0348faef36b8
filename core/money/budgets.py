"""Monthly budgets as admins and reports see them: set, list and read, with spend so far.

This module owns the budget rows' vocabulary (scopes, periods, reset dates, dollars, labels)
and the budget alerts. The per-request hot path that holds and settles money against these
rows lives in :mod:`core.money.reservations`, which depends on this module and never the reverse:
changing how a budget is shown or validated cannot touch the code every request runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.errors import InvalidInput, NotFound
from core.money.display import percent_text
from core.money.display import usd as usd  # re-exported: older callers import it from here
from core.request import Caller
from core.store import audit
from core.store.tables import Alert, Budget, Team, User

SCOPES: Final = ("user", "team", "provider")
ALERT_THRESHOLDS: Final = (80, 100)  # percent of the limit


@dataclass(frozen=True, slots=True)
class BudgetInfo:
    id: int
    scope: str
    scope_key: str
    label: str  # "user alice", "team Ops", "provider openai"
    limit_micros: int
    spent_micros: int
    reserved_micros: int
    period: str  # "YYYY-MM", UTC
    hard: bool
    resets_on: date  # first day of the next month, UTC

    @property
    def remaining_micros(self) -> int:
        return max(0, self.limit_micros - self.spent_micros - self.reserved_micros)


def period_of(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m")


def reset_date(period: str) -> date:
    year, month = (int(part) for part in period.split("-"))
    return date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)


def _labels(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Budgets in words for lists and alerts: "user alice", "team Ops", "provider openai"."""
    keys = list(keys)
    names: dict[str, dict[int, str]] = {"user": {}, "team": {}}
    for scope, model, name in (("user", User, User.username), ("team", Team, Team.name)):
        ids = [int(k) for sc, k in keys if sc == scope]
        if ids:
            names[scope] = {
                i: n for i, n in session.execute(select(model.id, name).where(model.id.in_(ids)))
            }
    return {
        (scope, key): f"{scope} "
        + (key if scope == "provider" else names[scope].get(int(key), f"#{key}"))
        for scope, key in keys
    }


def scope_label(session: Session, scope: str, scope_key: str) -> str:
    """One budget in words: "user alice", "team Ops", "provider openai"."""
    return _labels(session, [(scope, scope_key)])[(scope, scope_key)]


def _info(row: Budget, label: str, now: datetime) -> BudgetInfo:
    current = period_of(now)
    stale = row.period < current  # not rolled over yet: last month's spend no longer counts
    period = current if stale else row.period
    return BudgetInfo(
        id=row.id,
        scope=row.scope,
        scope_key=row.scope_key,
        label=label,
        limit_micros=row.limit_micros,
        spent_micros=0 if stale else row.spent_micros,
        reserved_micros=row.reserved_micros,
        period=period,
        hard=row.hard,
        resets_on=reset_date(period),
    )


def list_budgets(session: Session, now: datetime | None = None) -> list[BudgetInfo]:
    now = now or datetime.now(UTC)
    rows = list(session.scalars(select(Budget)))
    labels = _labels(session, [(r.scope, r.scope_key) for r in rows])
    infos = [_info(r, labels[(r.scope, r.scope_key)], now) for r in rows]
    return sorted(infos, key=lambda b: (SCOPES.index(b.scope), b.label.lower()))


def _find(session: Session, scope: str, scope_key: str) -> Budget | None:
    query = select(Budget).where(Budget.scope == scope, Budget.scope_key == scope_key)
    return session.scalar(query)


def get_budget(
    session: Session, scope: str, scope_key: str, now: datetime | None = None
) -> BudgetInfo | None:
    row = _find(session, scope, scope_key)
    if row is None:
        return None
    return _info(row, scope_label(session, scope, scope_key), now or datetime.now(UTC))


def set_budget(
    session: Session,
    scope: str,
    scope_key: str,
    limit_micros: int,
    hard: bool,
    actor: str,
    now: datetime,
) -> BudgetInfo:
    """Create or change a monthly budget; the spend so far is kept."""
    if scope not in SCOPES:
        raise InvalidInput(f"Unknown budget scope {scope!r}; use one of {', '.join(SCOPES)}.")
    if isinstance(limit_micros, bool) or not isinstance(limit_micros, int) or limit_micros < 0:
        raise InvalidInput("A budget limit must be zero or a positive amount of dollars.")
    if scope in ("user", "team"):
        model = User if scope == "user" else Team
        if not scope_key.isdigit() or session.get(model, int(scope_key)) is None:
            raise NotFound(f"No {scope} with id {scope_key!r}.")
    elif not scope_key or len(scope_key) > 64 or scope_key != scope_key.strip():
        raise InvalidInput(f"{scope_key!r} is not a provider name.")
    row = _find(session, scope, scope_key)
    previous = None if row is None else {"limit_micros": row.limit_micros, "hard": row.hard}
    if row is None:
        row = Budget(
            scope=scope,
            scope_key=scope_key,
            limit_micros=limit_micros,
            hard=hard,
            period=period_of(now),
            spent_micros=0,
            reserved_micros=0,
            updated_at=now,
        )
        session.add(row)
    else:  # the ORM writes only these columns, so concurrent counter updates survive
        row.limit_micros, row.hard, row.updated_at = limit_micros, hard, now
    session.flush()
    session.refresh(row)
    audit.record(
        session,
        actor=actor,
        action="budget.set",
        target=f"{scope}:{scope_key}",
        now=now,
        details={"limit_micros": limit_micros, "hard": hard, "previous": previous},
    )
    info = _info(row, scope_label(session, scope, scope_key), now)
    for percent in ALERT_THRESHOLDS:  # a lowered limit may already be crossed
        if info.spent_micros * 100 >= limit_micros * percent and info.spent_micros:
            record_alert(session, info, percent, now)
    return info


def alert_message(budget: BudgetInfo, threshold: int) -> str:
    """A budget alert in words: where the budget stands now, and which threshold it passed.

    The figure said is the spend itself ("at 99%"), so a budget far past a threshold
    never reads as if it had just reached it.
    """
    kind = "hard" if budget.hard else "soft"
    spent, limit = budget.spent_micros, budget.limit_micros
    where = f"{usd(spent)} of {usd(limit)} in {budget.period}"
    level = percent_text(spent / limit) if limit else "over its limit"
    if threshold < 100:
        tail = f"past the {threshold}% warning"
    elif budget.hard:
        tail = "requests that would spend more are refused"
    else:
        tail = "over the limit (a soft budget only alerts)"
    return f"The {kind} monthly budget of {budget.label} is at {level} ({where}): {tail}."


def record_alert(session: Session, budget: BudgetInfo, percent: int, now: datetime) -> None:
    """Insert the alert unless this budget already has it for this period."""
    values = {
        "at": now,
        "kind": f"budget-{percent}",
        "period": budget.period,
        "subject": f"{budget.scope}:{budget.scope_key}",
        "message": alert_message(budget, percent),
        "details": {
            "limit_micros": budget.limit_micros,
            "spent_micros": budget.spent_micros,
            "hard": budget.hard,
        },
    }
    # ON CONFLICT DO NOTHING: a concurrent duplicate is expected and needs no savepoint.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(pg_insert(Alert).values(**values).on_conflict_do_nothing())
    else:  # SQLite and libSQL
        session.execute(sqlite_insert(Alert).values(**values).on_conflict_do_nothing())


def estimate_remaining(session: Session, caller: Caller, now: datetime) -> int | None:
    """The tightest remaining hard budget of the caller or their team, in micro-dollars."""
    keys = [("user", str(caller.user_id))]
    if caller.team_id is not None:
        keys.append(("team", str(caller.team_id)))
    rows = [row for scope, key in keys if (row := _find(session, scope, key)) and row.hard]
    return min((_info(row, "", now).remaining_micros for row in rows), default=None)


def budgets_for_team(session: Session, team_id: int, now: datetime) -> list[BudgetInfo]:
    """A team's budget and its members' budgets, with spend and holds (what managers see)."""
    member_ids = [str(i) for i in session.scalars(select(User.id).where(User.team_id == team_id))]
    wanted = (Budget.scope == "team") & (Budget.scope_key == str(team_id))
    if member_ids:
        wanted = wanted | ((Budget.scope == "user") & Budget.scope_key.in_(member_ids))
    rows = list(session.scalars(select(Budget).where(wanted)))
    labels = _labels(session, [(r.scope, r.scope_key) for r in rows])
    infos = [_info(r, labels[(r.scope, r.scope_key)], now) for r in rows]
    return sorted(infos, key=lambda b: (SCOPES.index(b.scope), b.label.lower()))
