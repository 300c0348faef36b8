"""The analytics filter bar and view picker, both kept in the page's URL.

The URL is the source of truth: widgets write it in their callbacks and the page reads it
back on the next run, so any view can be shared by link or bookmarked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import streamlit as st
from sqlalchemy.orm import Session, sessionmaker

from core.accounts.auth import UserInfo
from core.analytics import filters as flt
from core.analytics.filters import Filters
from core.analytics.scope import Scope, scope_for
from ui import analytics_data as data
from ui import state

F = state.ANALYTICS_FILTER_PREFIX
DIMENSIONS = ("provider", "model", "task", "source", "status")
VIEWS = ("Overview", "Models", "Budgets & alerts", "What-if", "Requests", "Export")


@dataclass(frozen=True)
class AnalyticsView:
    """What the URL asks for, narrowed to what the viewer may see."""

    scope: Scope
    filters: Filters
    view: str
    notes: list[str]


def view_from_url(sessions: sessionmaker[Session], user: UserInfo, today: date) -> AnalyticsView:
    """Read filters and view from the URL; anything outside the scope is dropped, with a note.

    The URL is then rewritten to show the filters actually applied.
    """
    with sessions() as session:
        scope = scope_for(session, user)
        asked, notes = flt.from_query_params(st.query_params.to_dict(), today)
        filters, scope_notes = flt.within_scope(session, asked, scope)
    notes += scope_notes
    view = st.query_params.get("view", VIEWS[0])
    if view not in VIEWS:
        notes.append(f"Unknown view {view!r}; showing {VIEWS[0]}.")
        view = VIEWS[0]
    shown = flt.to_query_params(filters) | ({} if view == VIEWS[0] else {"view": view})
    if shown != st.query_params.to_dict():
        st.query_params.from_dict(shown)
    return AnalyticsView(scope, filters, view, notes)


def _seed(field: str, value: Any) -> None:
    if F + field not in st.session_state:
        st.session_state[F + field] = value


def _to_url(fallback_preset: str) -> None:
    """Widget callback: write the chosen filters into the URL (the page reads them back)."""
    ss = st.session_state
    params: dict[str, str] = {"range": ss[F + "preset"]}
    if params["range"] == "custom":
        picked: Sequence[date] = ss.get(F + "dates") or ()
        if len(picked) == 2:
            params["from"], params["to"] = picked[0].isoformat(), picked[1].isoformat()
        else:
            params["range"] = fallback_preset
    for field, param in (("user_id", "user"), ("team_id", "team"), *((d, d) for d in DIMENSIONS)):
        value = ss.get(F + field)
        if value is not None:
            params[param] = str(value)
    if ss.get(F + "view", VIEWS[0]) != VIEWS[0]:
        params["view"] = ss[F + "view"]
    st.query_params.from_dict(params)
    st.session_state.pop(state.ANALYTICS_CURSORS, None)


def _choice(
    column: Any,
    filters: Filters,
    label: str,
    field: str,
    options: list[Any],
    names: dict[Any, str] | None = None,
) -> None:
    current = getattr(filters, field)
    if current is not None and current not in options:
        options = [current, *options]
    _seed(field, current)
    if st.session_state[F + field] not in [None, *options]:
        st.session_state[F + field] = None
    column.selectbox(
        label,
        [None, *options],
        key=F + field,
        on_change=_to_url,
        args=(filters.preset,),
        placeholder="All",
        format_func=lambda v: "All" if v is None else (names or {}).get(v, str(v)),
    )


def filter_bar(scope: Scope, filters: Filters, options: dict[str, list[str]], today: date) -> None:
    """Date range, person, team and the five dimensions, each written to the URL."""
    with st.container(border=True):
        row1 = st.columns([2, 2, 2, 2])
        _seed("preset", filters.preset)
        row1[0].selectbox(
            "Date range",
            list(flt.PRESETS),
            key=F + "preset",
            on_change=_to_url,
            args=(filters.preset,),
            format_func=flt.PRESETS.__getitem__,
        )
        if filters.preset == "custom" or st.session_state[F + "preset"] == "custom":
            _seed("dates", (filters.start, filters.end))
            row1[1].date_input(
                "From – to (UTC)",
                key=F + "dates",
                on_change=_to_url,
                args=(filters.preset,),
                max_value=today,
            )
        if scope.sees_users:
            names = data.people(scope)
            _choice(row1[2], filters, "User", "user_id", list(names), names)
        if scope.kind == "all":
            teams = data.teams(scope)
            _choice(row1[3], filters, "Team", "team_id", list(teams), teams)
        row2 = st.columns(5)
        for col, field in zip(row2, DIMENSIONS, strict=True):
            _choice(col, filters, field.capitalize(), field, options[field])


def view_picker(view: str, filters: Filters) -> str:
    """One view at a time: a run computes the key figures and this view only."""
    _seed("view", view)
    return str(
        st.radio(
            "View",
            VIEWS,
            key=F + "view",
            on_change=_to_url,
            args=(filters.preset,),
            horizontal=True,
            label_visibility="collapsed",
        )
    )
