"""Analytics filters: a UTC date range plus optional dimensions, kept in the URL.

``from_query_params`` reads what a shared link carries and reports anything it could
not use; ``within_scope`` then drops filters that point outside the viewer's scope
(a member asking for another user's id gets their own data and a note saying so).
``rollup_terms`` and ``request_terms`` are the SQL WHERE terms, the scope always
included, so no filter can widen what a person sees.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from core.analytics.scope import Scope
from core.store.tables import RequestRow, User, usage_daily

PRESETS: Final = {
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "this-month": "This month",
    "last-month": "Last month",
    "custom": "Custom range",
}
DEFAULT_PRESET: Final = "30d"
MAX_DAYS: Final = 731  # two years: enough for any review, bounded for the rollup scans
SOURCES: Final = ("chat", "compare", "api")
# URL parameter -> Filters field, for the optional dimensions.
DIMENSION_PARAMS: Final = {
    "user": "user_id",
    "team": "team_id",
    "provider": "provider",
    "model": "model",
    "task": "task",
    "source": "source",
    "status": "status",
}
_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class Filters:
    start: date  # first UTC day, inclusive
    end: date  # last UTC day, inclusive
    preset: str = DEFAULT_PRESET
    user_id: int | None = None
    team_id: int | None = None
    provider: str | None = None
    model: str | None = None
    task: str | None = None
    source: str | None = None
    status: str | None = None

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def until(self) -> datetime:
        """Exclusive end: midnight after the last day."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)

    def previous(self) -> Filters:
        """The same filters over the equal-length period just before this one."""
        length = timedelta(days=self.days)
        return replace(self, start=self.start - length, end=self.end - length, preset="custom")

    def dimensions(self) -> dict[str, Any]:
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name in DIMENSION_PARAMS.values()
        }


def preset_range(preset: str, today: date) -> tuple[date, date]:
    """(first, last) UTC day of a preset, ending today."""
    if preset in ("7d", "30d", "90d"):
        return today - timedelta(days=int(preset[:-1]) - 1), today
    first_of_month = today.replace(day=1)
    if preset == "this-month":
        return first_of_month, today
    if preset == "last-month":
        last = first_of_month - timedelta(days=1)
        return last.replace(day=1), last
    raise ValueError(f"unknown preset {preset!r}")


def default_filters(today: date) -> Filters:
    start, end = preset_range(DEFAULT_PRESET, today)
    return Filters(start, end, DEFAULT_PRESET)


def _one(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if isinstance(value, list):
        value = value[-1] if value else None
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _day(raw: str | None) -> date | None:
    if raw is None or not _DAY_RE.match(raw):
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return None


def from_query_params(params: Mapping[str, Any], today: date) -> tuple[Filters, list[str]]:
    """Filters from URL parameters, and a note for each one that could not be used."""
    notes: list[str] = []
    preset = _one(params, "range") or DEFAULT_PRESET
    if preset not in PRESETS:
        notes.append(f"Unknown date range {preset!r}; showing {PRESETS[DEFAULT_PRESET].lower()}.")
        preset = DEFAULT_PRESET
    if preset == "custom":
        start, end = _day(_one(params, "from")), _day(_one(params, "to"))
        if start is None or end is None or start > end or (end - start).days >= MAX_DAYS:
            notes.append(
                "The custom range needs from and to dates (YYYY-MM-DD, from before to, "
                f"at most {MAX_DAYS} days); showing the last 30 days."
            )
            preset = DEFAULT_PRESET
            start, end = preset_range(preset, today)
    else:
        start, end = preset_range(preset, today)
    values: dict[str, Any] = {}
    for param, field in DIMENSION_PARAMS.items():
        raw = _one(params, param)
        if raw is None:
            continue
        if field in ("user_id", "team_id"):
            if not raw.isdigit():
                notes.append(f"Ignored {param}={raw!r}: it must be a number.")
                continue
            values[field] = int(raw)
        elif field == "source" and raw not in SOURCES:
            notes.append(f"Ignored source={raw!r}: it must be one of {', '.join(SOURCES)}.")
        else:
            values[field] = raw[:200]
    return Filters(start, end, preset, **values), notes


def to_query_params(filters: Filters) -> dict[str, str]:
    """The URL parameters that reproduce ``filters`` (presets stay relative to today)."""
    params = {"range": filters.preset}
    if filters.preset == "custom":
        params["from"] = filters.start.isoformat()
        params["to"] = filters.end.isoformat()
    for param, field in DIMENSION_PARAMS.items():
        value = getattr(filters, field)
        if value is not None:
            params[param] = str(value)
    return params


def within_scope(session: Session, filters: Filters, scope: Scope) -> tuple[Filters, list[str]]:
    """Drop user and team filters outside the scope, with a note for each one dropped."""
    notes: list[str] = []
    if scope.kind == "all":
        return filters, notes
    if filters.team_id is not None and filters.team_id != scope.team_id:
        notes.append("You can only see your own team; the team filter was removed.")
        filters = replace(filters, team_id=None)
    if filters.user_id is not None and filters.user_id != scope.user_id:
        allowed = False
        if scope.kind == "team":
            team = session.scalar(select(User.team_id).where(User.id == filters.user_id))
            allowed = team is not None and team == scope.team_id
        if not allowed:
            notes.append(
                "You can only see "
                + ("your own usage" if scope.kind == "user" else "people in your team")
                + "; the user filter was removed."
            )
            filters = replace(filters, user_id=None)
    return filters, notes


def rollup_terms(filters: Filters, scope: Scope) -> list[ColumnElement[bool]]:
    """WHERE terms over ``usage_daily``: the days, the dimensions and the scope."""
    c = usage_daily.c
    terms: list[ColumnElement[bool]] = [c.day >= filters.start, c.day <= filters.end]
    terms += _scope_terms(scope, c.user_id, c.team_id)
    for field, column in (
        ("user_id", c.user_id),
        ("team_id", c.team_id),
        ("provider", c.provider),
        ("model", c.model),
        ("task", c.task),
        ("source", c.source),
        ("status", c.status),
    ):
        value = getattr(filters, field)
        if value is not None:
            terms.append(column == value)
    return terms


def request_model() -> ColumnElement[str]:
    """The model a raw request is filed under, as the rollups file it."""
    return func.coalesce(RequestRow.served_model, RequestRow.requested_model)


def request_terms(
    filters: Filters, scope: Scope, since: datetime | None = None, until: datetime | None = None
) -> list[ColumnElement[bool]]:
    """WHERE terms over raw ``requests`` (time range defaults to the filter's days)."""
    r = RequestRow
    terms: list[ColumnElement[bool]] = [
        r.at >= (since or filters.since),
        r.at < (until or filters.until),
    ]
    terms += _scope_terms(scope, r.user_id, r.team_id)
    if filters.user_id is not None:
        terms.append(r.user_id == filters.user_id)
    if filters.team_id is not None:
        terms.append(r.team_id == filters.team_id)
    if filters.provider is not None:
        terms.append(func.coalesce(r.provider, "") == filters.provider)
    if filters.model is not None:
        terms.append(request_model() == filters.model)
    for field, column in (("task", r.task), ("source", r.source), ("status", r.status)):
        value = getattr(filters, field)
        if value is not None:
            terms.append(column == value)
    return terms


def scope_request_terms(scope: Scope) -> list[ColumnElement[bool]]:
    """Only the scope, over raw ``requests`` (for looking up one request by id)."""
    return _scope_terms(scope, RequestRow.user_id, RequestRow.team_id)


def _scope_terms(scope: Scope, user_col: Any, team_col: Any) -> list[ColumnElement[bool]]:
    if scope.kind == "user":
        return [user_col == scope.user_id]
    if scope.kind == "team":
        return [team_col == scope.team_id]
    return []
