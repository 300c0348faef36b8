"""Alerts computed from the ledger, each with a time and the filters that show its cause.

Windows are the last hour and the last day before ``now``; hourly and daily checks read
raw requests (the ``at`` index bounds them), the error-rate baseline reads the rollups.
Each alert carries a (kind, subject, period) key, the same key the ``alerts`` table
makes unique, so a recurring condition is one alert per period, sent to a webhook once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from core.analytics.budgets_forecast import budgets_in_scope, forecast
from core.analytics.figures import ERROR_STATUSES, status_sum
from core.analytics.filters import Filters, request_model, request_terms, rollup_terms
from core.analytics.scope import Scope
from core.money import budgets
from core.request import STATUS_NO_KEY
from core.store.tables import PreferenceRefusal, RequestRow, User, usage_daily

FALLBACK_LIMIT: Final = 0.10
FALLBACK_MIN_REQUESTS: Final = 10
SPIKE_MIN_REQUESTS: Final = 10
SPIKE_MIN_ERRORS: Final = 3
BASELINE_DAYS: Final = 7


@dataclass(frozen=True, slots=True)
class AlertItem:
    kind: str
    subject: str
    period: str
    at: datetime
    severity: str  # "warning" or "error"
    message: str
    link: dict[str, str] = field(default_factory=dict)  # analytics URL parameters

    @property
    def key(self) -> tuple[str, str, str]:
        return self.kind, self.subject, self.period


def _window_filters(now: datetime) -> Filters:
    return Filters(start=(now - timedelta(days=1)).date(), end=now.date(), preset="custom")


def _link(now: datetime, **extra: str) -> dict[str, str]:
    day = now.date().isoformat()
    start = (now - timedelta(days=1)).date().isoformat()
    return {"range": "custom", "from": start, "to": day, **extra}


def _pct(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def current_alerts(session: Session, scope: Scope, now: datetime) -> list[AlertItem]:
    """Every alert that holds at ``now`` within ``scope``, most severe first."""
    found: list[AlertItem] = []
    found += _fallback_alerts(session, scope, now)
    found += _error_spikes(session, scope, now)
    found += _budget_alerts(session, scope, now)
    found += _no_key_alerts(session, scope, now)
    found += _refusal_alerts(session, scope, now)
    found += _unpriced_alerts(session, scope, now)
    return sorted(found, key=lambda a: (a.severity != "error", a.kind, a.subject))


def _fallback_alerts(session: Session, scope: Scope, now: datetime) -> list[AlertItem]:
    out = []
    window = _window_filters(now)
    for label, span, period in (
        ("hour", timedelta(hours=1), now.strftime("%Y-%m-%dT%H")),
        ("day", timedelta(days=1), now.strftime("%Y-%m-%d")),
    ):
        total, fallbacks = session.execute(
            select(func.count(), _count_if(RequestRow.fallback_used.is_(True))).where(
                *request_terms(window, scope, since=now - span, until=now)
            )
        ).one()
        total, fallbacks = int(total), int(fallbacks)
        if total >= FALLBACK_MIN_REQUESTS and fallbacks / total > FALLBACK_LIMIT:
            out.append(
                AlertItem(
                    f"fallback-{label}",
                    "all",
                    period,
                    now,
                    "warning",
                    f"Fallback rate {_pct(fallbacks / total)} over the last {label} "
                    f"({fallbacks} of {total} requests), above {_pct(FALLBACK_LIMIT)}.",
                    _link(now, status="success-after-fallback"),
                )
            )
    return out


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _error_spikes(session: Session, scope: Scope, now: datetime) -> list[AlertItem]:
    """A provider's error rate in the last hour against its rate over the days before."""
    r = RequestRow
    window = _window_filters(now)
    errors = _count_if(r.status.in_(ERROR_STATUSES))
    recent = session.execute(
        select(r.provider, func.count(), errors)
        .where(
            *request_terms(window, scope, since=now - timedelta(hours=1), until=now),
            r.provider.is_not(None),
        )
        .group_by(r.provider)
    ).all()
    if not recent:
        return []
    c = usage_daily.c
    base_filters = Filters(
        start=now.date() - timedelta(days=BASELINE_DAYS),
        end=now.date() - timedelta(days=1),
        preset="custom",
    )
    baseline = {
        p: (int(n), int(e))
        for p, n, e in session.execute(
            select(c.provider, func.sum(c.requests), status_sum(ERROR_STATUSES))
            .where(*rollup_terms(base_filters, scope))
            .group_by(c.provider)
        )
    }
    out = []
    for provider, n, e in recent:
        n, e = int(n), int(e or 0)
        provider = str(provider)
        if n < SPIKE_MIN_REQUESTS or e < SPIKE_MIN_ERRORS:
            continue
        base_n, base_e = baseline.get(provider, (0, 0))
        base_rate = base_e / base_n if base_n else 0.0
        rate = e / n
        if rate >= 2 * base_rate and rate >= base_rate + 0.05:
            out.append(
                AlertItem(
                    "error-spike",
                    provider,
                    now.strftime("%Y-%m-%dT%H"),
                    now,
                    "error",
                    f"{provider} errors jumped to {_pct(rate)} in the last hour ({e} of {n}), "
                    f"against {_pct(base_rate)} over the previous {BASELINE_DAYS} days.",
                    _link(now, provider=provider),
                )
            )
    return out


def _budget_alerts(session: Session, scope: Scope, now: datetime) -> list[AlertItem]:
    out = []
    for budget in budgets_in_scope(session, scope, now):
        fc = forecast(budget, now)
        if fc.reached is None:
            continue
        out.append(
            AlertItem(
                f"budget-{fc.reached}",
                f"{budget.scope}:{budget.scope_key}",
                budget.period,
                now,
                "error" if fc.reached >= 100 else "warning",
                budgets.alert_message(budget, fc.reached),
                _budget_link(now, budget.scope, budget.scope_key),
            )
        )
    return out


def _budget_link(now: datetime, scope: str, key: str) -> dict[str, str]:
    param = {"user": "user", "team": "team", "provider": "provider"}[scope]
    return {"range": "this-month", param: key}


def _no_key_alerts(session: Session, scope: Scope, now: datetime) -> list[AlertItem]:
    model = request_model()
    rows = session.execute(
        select(model, func.count())
        .where(
            *request_terms(_window_filters(now), scope, since=now - timedelta(days=1), until=now),
            RequestRow.status == STATUS_NO_KEY,
        )
        .group_by(model)
    ).all()
    return [
        AlertItem(
            "no-key",
            m or "(unknown)",
            now.strftime("%Y-%m-%d"),
            now,
            "error",
            f"{n} request(s) for {m} failed in the last day because no provider key was set. "
            "Add a key on the Providers page.",
            _link(now, status=STATUS_NO_KEY, model=m or ""),
        )
        for m, n in rows
    ]


def _refusal_alerts(session: Session, scope: Scope, now: datetime) -> list[AlertItem]:
    p = PreferenceRefusal
    query = select(p.provider, func.count(), func.max(p.at)).where(
        p.at >= now - timedelta(days=1), p.at <= now
    )
    if scope.kind == "user":
        query = query.where(p.user_id == scope.user_id)
    elif scope.kind == "team":
        query = query.join(User, User.id == p.user_id).where(User.team_id == scope.team_id)
    rows = session.execute(query.group_by(p.provider)).all()
    return [
        AlertItem(
            "preference-refused",
            provider,
            now.strftime("%Y-%m-%d"),
            last,
            "warning",
            f"{n} preferred-provider choice(s) of {provider} were refused in the last day "
            "(no usable key).",
            _link(now, provider=provider),
        )
        for provider, n, last in rows
    ]


def _unpriced_alerts(session: Session, scope: Scope, now: datetime) -> list[AlertItem]:
    model = request_model()
    rows = session.execute(
        select(model, func.count())
        .where(
            *request_terms(_window_filters(now), scope, since=now - timedelta(days=1), until=now),
            RequestRow.priced.is_(False),
            RequestRow.served_model.is_not(None),
        )
        .group_by(model)
    ).all()
    # Prices are admin-only (Admin > Prices): tell each role what it can actually do.
    fix = (
        "Set its price on Admin → Prices."
        if scope.kind == "all"
        else "Ask an admin to set its price (Admin → Prices)."
    )
    return [
        AlertItem(
            "unpriced-model",
            m,
            now.strftime("%Y-%m-%d"),
            now,
            "warning",
            f"{m} answered {n} request(s) in the last day without a price, so their cost is "
            f"unknown. {fix}",
            _link(now, model=m),
        )
        for m, n in rows
    ]
