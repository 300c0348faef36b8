"""Cached analytics queries for the page.

Every function takes the viewer's scope and the filters as arguments, because
st.cache_data is shared by all users: the cache key always includes whose data it is.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

import httpx
import pandas as pd
import streamlit as st
from sqlalchemy import select

from core.analytics import charts_data, figures, webhook
from core.analytics.alerts import AlertItem, current_alerts
from core.analytics.budgets_forecast import Forecast, budgets_in_scope, burn_down, forecast
from core.analytics.filters import Filters, rollup_terms
from core.analytics.scope import Scope
from core.compare import leaderboard
from core.store.tables import Team, User, usage_daily
from ui.resources import services

TTL = 60  # seconds: new requests show up within a minute


@st.cache_data(ttl=TTL, show_spinner=False)
def key_figures(scope: Scope, filters: Filters) -> tuple[figures.KeyFigures, figures.KeyFigures]:
    with services().sessions() as s:
        return (
            figures.key_figures(s, filters, scope),
            figures.key_figures(s, filters.previous(), scope),
        )


@st.cache_data(ttl=TTL, show_spinner=False)
def filter_options(scope: Scope, start: date, end: date) -> dict[str, list[str]]:
    """Values seen in the period within the scope, for the filter dropdowns (one scan)."""
    c = usage_daily.c
    names = ("provider", "model", "task", "source", "status")
    seen: dict[str, set[str]] = {name: set() for name in names}
    with services().sessions() as s:
        rows = s.execute(
            select(*(c[n] for n in names))
            .where(*rollup_terms(Filters(start, end, "custom"), scope))
            .group_by(*(c[n] for n in names))
        )
        for row in rows:
            for name, value in zip(names, row, strict=True):
                if value:
                    seen[name].add(value)
    return {name: sorted(values) for name, values in seen.items()}


@st.cache_data(ttl=TTL, show_spinner=False)
def people(scope: Scope) -> dict[int, str]:
    """{user id: username} of the people in scope (everyone for admins, the team for managers)."""
    query = select(User.id, User.username).order_by(User.username)
    if scope.kind == "team":
        query = query.where(User.team_id == scope.team_id)
    elif scope.kind == "user":
        query = query.where(User.id == scope.user_id)
    with services().sessions() as s:
        return {int(i): str(n) for i, n in s.execute(query).all()}


@st.cache_data(ttl=TTL, show_spinner=False)
def teams(scope: Scope) -> dict[int, str]:
    """{team id: name}: every team for admins, none for anyone else (they see one team)."""
    if scope.kind != "all":
        return {}
    with services().sessions() as s:
        return {
            int(i): str(n)
            for i, n in s.execute(select(Team.id, Team.name).order_by(Team.name)).all()
        }


@st.cache_data(ttl=TTL, show_spinner=False)
def cost_over_time(
    scope: Scope, filters: Filters, by: Literal["provider", "model"], grain: Literal["day", "hour"]
) -> pd.DataFrame:
    with services().sessions() as s:
        return charts_data.cost_over_time(s, filters, scope, by, grain)


@st.cache_data(ttl=TTL, show_spinner=False)
def tokens_by_provider(scope: Scope, filters: Filters) -> pd.DataFrame:
    with services().sessions() as s:
        return charts_data.tokens_by_provider(s, filters, scope)


@st.cache_data(ttl=TTL, show_spinner=False)
def cost_by(
    scope: Scope, filters: Filters, dimension: Literal["task", "user", "team"]
) -> pd.DataFrame:
    with services().sessions() as s:
        return charts_data.cost_by(s, filters, scope, dimension)


@st.cache_data(ttl=TTL, show_spinner=False)
def latency_histograms(scope: Scope, filters: Filters) -> pd.DataFrame:
    with services().sessions() as s:
        return charts_data.latency_histograms(s, filters, scope)


@st.cache_data(ttl=TTL, show_spinner=False)
def rates(scope: Scope, filters: Filters) -> tuple[pd.DataFrame, pd.DataFrame]:
    with services().sessions() as s:
        return (
            charts_data.rates_over_time(s, filters, scope),
            charts_data.provider_error_spikes(s, filters, scope),
        )


@st.cache_data(ttl=TTL, show_spinner=False)
def model_performance(scope: Scope, filters: Filters) -> pd.DataFrame:
    with services().sessions() as s:
        # Comparison votes as a 0..1 quality (the leaderboard's), from the viewer's team
        # or, for an admin, everyone's; None leaves the column out when nobody voted.
        team = None if scope.kind == "all" else scope.team_id
        ratings = leaderboard.quality_scores(s, team_id=team) or None
        return charts_data.model_performance(s, filters, scope, ratings)


@st.cache_data(ttl=TTL, show_spinner=False)
def budgets(scope: Scope, minute: datetime) -> list[tuple[Forecast, pd.DataFrame]]:
    """Forecasts and burn-downs; ``minute`` (now, to the minute) keys the cache."""
    with services().sessions() as s:
        return [
            (forecast(b, minute), burn_down(s, b, minute))
            for b in budgets_in_scope(s, scope, minute)
        ]


@st.cache_data(ttl=TTL, show_spinner=False)
def alerts(scope: Scope, minute: datetime) -> list[AlertItem]:
    with services().sessions() as s:
        return current_alerts(s, scope, minute)


@st.cache_data(ttl=TTL, show_spinner=False)
def send_alerts(minute: datetime) -> int:
    """Send new org-wide alerts to the webhook, at most once a minute per process.

    Delivery is once per alert regardless (core.analytics.webhook); the cache only keeps
    page runs from re-checking on every click.
    """
    everything = Scope("all", 0, None, "everyone")
    with httpx.Client() as client:
        return webhook.dispatch(
            services().sessions, alerts(everything, minute), now=minute, client=client
        )
