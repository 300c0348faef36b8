"""Analytics: usage, cost, budgets, alerts and what-if for the viewer's scope.

Members see their own usage, managers their team's, admins everything. The scope comes
from the signed-in user; filters live in the URL so a view can be shared, and any
filter outside the scope is dropped (with a note), never trusted.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import streamlit as st

from core.analytics import exports, recent, webhook, whatif
from core.analytics import filters as flt
from core.analytics.figures import KeyFigures, change
from core.analytics.scope import scope_for
from core.clock import utc_now
from core.errors import SwitchboardError
from core.money.budgets import usd
from core.money.pricing import load_price_book
from ui import analytics_charts as charts
from ui import analytics_data as data
from ui import state
from ui.resources import services
from ui.session import current_user

F = state.ANALYTICS_FILTER_PREFIX
DIMENSIONS = ("provider", "model", "task", "source", "status")
VIEWS = ("Overview", "Models", "Budgets & alerts", "What-if", "Requests", "Export")

user = current_user()
svc = services()
now = utc_now()
minute = now.replace(second=0, microsecond=0)
today = now.date()

with svc.sessions() as session:
    scope = scope_for(session, user)
    asked, notes = flt.from_query_params(st.query_params.to_dict(), today)
    filters, scope_notes = flt.within_scope(session, asked, scope)
notes += scope_notes
view = st.query_params.get("view", VIEWS[0])
if view not in VIEWS:
    notes.append(f"Unknown view {view!r}; showing {VIEWS[0]}.")
    view = VIEWS[0]
# Keep the URL honest: it always shows the filters actually applied.
shown_params = flt.to_query_params(filters) | ({} if view == VIEWS[0] else {"view": view})
if shown_params != st.query_params.to_dict():
    st.query_params.from_dict(shown_params)

st.title("Analytics")
st.caption(
    f"Showing usage for {scope.label} · {filters.start:%d %b %Y} to "
    f"{filters.end:%d %b %Y} (UTC days) · compared with the {filters.days} days before"
)
for note in notes:
    st.warning(note)


# --- filters ------------------------------------------------------------------------


def _seed(field: str, value: Any) -> None:
    if F + field not in st.session_state:
        st.session_state[F + field] = value


def _to_url() -> None:
    """Widget callback: write the chosen filters into the URL (the page reads them back)."""
    ss = st.session_state
    params: dict[str, str] = {"range": ss[F + "preset"]}
    if params["range"] == "custom":
        picked = ss.get(F + "dates") or ()
        if len(picked) == 2:
            params["from"], params["to"] = picked[0].isoformat(), picked[1].isoformat()
        else:
            params["range"] = filters.preset
    for field, param in (("user_id", "user"), ("team_id", "team"), *((d, d) for d in DIMENSIONS)):
        value = ss.get(F + field)
        if value is not None:
            params[param] = str(value)
    if ss.get(F + "view", VIEWS[0]) != VIEWS[0]:
        params["view"] = ss[F + "view"]
    st.query_params.from_dict(params)
    st.session_state.pop(state.ANALYTICS_CURSORS, None)


def _choice(
    column: Any, label: str, field: str, options: list[Any], names: dict[Any, str] | None = None
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
        placeholder="All",
        format_func=lambda v: "All" if v is None else (names or {}).get(v, str(v)),
    )


options = data.filter_options(scope, filters.start, filters.end)
with st.container(border=True):
    row1 = st.columns([2, 2, 2, 2])
    _seed("preset", filters.preset)
    row1[0].selectbox(
        "Date range",
        list(flt.PRESETS),
        key=F + "preset",
        on_change=_to_url,
        format_func=flt.PRESETS.__getitem__,
    )
    if filters.preset == "custom" or st.session_state[F + "preset"] == "custom":
        _seed("dates", (filters.start, filters.end))
        row1[1].date_input("From – to (UTC)", key=F + "dates", on_change=_to_url, max_value=today)
    if scope.sees_users:
        names = data.people(scope)
        _choice(row1[2], "User", "user_id", list(names), names)
    if scope.kind == "all":
        teams = data.teams(scope)
        _choice(row1[3], "Team", "team_id", list(teams), teams)
    row2 = st.columns(5)
    for col, field in zip(row2, DIMENSIONS, strict=True):
        _choice(col, field.capitalize(), field, options[field])


# --- key figures ----------------------------------------------------------------------


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def money(micros: int) -> str:
    """Cents from a dollar up (a metric has little room); every digit below that."""
    return f"${micros / 1_000_000:,.2f}" if micros >= 1_000_000 else usd(micros)


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def _rel(now_value: float | None, before: float | None) -> str | None:
    moved = change(now_value, before)
    return None if moved is None else f"{moved * 100:+.1f}%"


def _pts(now_value: float | None, before: float | None) -> str | None:
    if now_value is None or before is None:
        return None
    return f"{(now_value - before) * 100:+.1f} pts"


def key_figures(cur: KeyFigures, prev: KeyFigures) -> None:
    cost = money(cur.cost_micros)
    if cur.unpriced_requests:
        cost += " + unpriced"
    rows: list[list[tuple[str, str, str | None, str]]] = [
        [
            ("Total cost", cost, _rel(cur.cost_micros, prev.cost_micros), "inverse"),
            ("Requests", f"{cur.requests:,}", _rel(cur.requests, prev.requests), "off"),
            (
                "Tokens in",
                f"{cur.prompt_tokens:,}",
                _rel(cur.prompt_tokens, prev.prompt_tokens),
                "off",
            ),
            (
                "Tokens out",
                f"{cur.completion_tokens:,}",
                _rel(cur.completion_tokens, prev.completion_tokens),
                "off",
            ),
        ],
        [
            (
                "Success rate",
                _pct(cur.success_rate),
                _pts(cur.success_rate, prev.success_rate),
                "normal",
            ),
            (
                "Fallback rate",
                _pct(cur.fallback_rate),
                _pts(cur.fallback_rate, prev.fallback_rate),
                "inverse",
            ),
            ("Error rate", _pct(cur.error_rate), _pts(cur.error_rate, prev.error_rate), "inverse"),
        ],
        [
            (
                "Latency P50",
                _ms(cur.latency_p50_ms),
                _rel(cur.latency_p50_ms, prev.latency_p50_ms),
                "inverse",
            ),
            (
                "Latency P95",
                _ms(cur.latency_p95_ms),
                _rel(cur.latency_p95_ms, prev.latency_p95_ms),
                "inverse",
            ),
            (
                "First token P50",
                _ms(cur.ttft_p50_ms),
                _rel(cur.ttft_p50_ms, prev.ttft_p50_ms),
                "inverse",
            ),
            (
                "First token P95",
                _ms(cur.ttft_p95_ms),
                _rel(cur.ttft_p95_ms, prev.ttft_p95_ms),
                "inverse",
            ),
        ],
    ]
    for row in rows:
        cols = st.columns(4)
        for col, (label, value, delta, color) in zip(cols, row, strict=False):
            col.metric(label, value, delta, delta_color=color)  # type: ignore[arg-type]
    notes = [
        "Changes compare with the previous period of equal length.",
        "Percentiles come from latency histograms (within one bucket, ≤ a third of the value).",
    ]
    if cur.unpriced_requests:
        notes.append(
            f"{cur.unpriced_requests:,} requests used unpriced models; their cost "
            "is unknown and not in the total."
        )
    st.caption(" ".join(notes))


try:
    current, previous = data.key_figures(scope, filters)
except SwitchboardError as exc:
    st.error(exc.message)
    st.stop()
key_figures(current, previous)
if current.requests == 0:
    st.info(
        "No requests match these filters in this period. Widen the date range or clear a filter."
    )

# One view at a time: a run computes the key figures and the chosen view only, which keeps
# every rerun fast on a large ledger. The view is in the URL like the filters.
_seed("view", view)
view = st.radio(
    "View", VIEWS, key=F + "view", on_change=_to_url, horizontal=True, label_visibility="collapsed"
)


# --- overview charts --------------------------------------------------------------------

if view == "Overview":
    c1, c2 = st.columns([3, 1])
    by = c2.radio("Stack by", ["provider", "model"], horizontal=True)
    hourly_ok = filters.days <= 14
    grain = c2.radio(
        "Interval",
        ["day", "hour"],
        horizontal=True,
        disabled=not hourly_ok,
        help=None if hourly_ok else "Hourly is available for up to 14 days.",
    )
    if not hourly_ok:
        grain = "day"
    c1.plotly_chart(
        charts.cost_over_time(data.cost_over_time(scope, filters, by, grain), by, grain),
        key="chart_cost_time",
    )
    c1, c2 = st.columns(2)
    c1.plotly_chart(
        charts.tokens_by_provider(data.tokens_by_provider(scope, filters)), key="chart_tokens"
    )
    c2.plotly_chart(
        charts.cost_bar(data.cost_by(scope, filters, "task"), "Cost by task (USD)"),
        key="chart_task",
    )
    day_rates, spikes = data.rates(scope, filters)
    st.plotly_chart(charts.rates_over_time(day_rates, spikes), key="chart_rates")
    if not spikes.empty:
        st.caption(
            "Marked: "
            + "; ".join(
                f"{r.provider} on {r.day:%d %b} ({r.error_rate * 100:.0f}% errors vs "
                f"{r.baseline * 100:.1f}% usual)"
                for r in spikes.itertuples()
            )
        )
    if scope.sees_users:
        st.subheader("Cost by user")
        by_user = data.cost_by(scope, filters, "user")
        c1, c2 = st.columns([1, 1])
        c1.plotly_chart(charts.cost_bar(by_user, "Cost by user (USD, top 20)"), key="chart_users")
        c2.dataframe(
            by_user.drop(columns=["cost_micros"]),
            hide_index=True,
            width="stretch",
            column_config={
                "name": "User",
                "cost_usd": st.column_config.NumberColumn("Cost", format="$%.4f"),
                "unpriced_requests": "Unpriced requests",
            },
        )
        if scope.kind == "all":
            by_team = data.cost_by(scope, filters, "team")
            st.dataframe(
                by_team.drop(columns=["cost_micros"]),
                hide_index=True,
                width="stretch",
                column_config={
                    "name": "Team",
                    "cost_usd": st.column_config.NumberColumn("Cost", format="$%.4f"),
                },
            )


# --- models ------------------------------------------------------------------------------

if view == "Models":
    st.plotly_chart(
        charts.latency_distribution(data.latency_histograms(scope, filters)), key="chart_latency"
    )
    st.subheader("Model performance")
    perf = data.model_performance(scope, filters)
    st.dataframe(
        perf,
        hide_index=True,
        width="stretch",
        column_config={
            "success_rate": st.column_config.NumberColumn("Success", format="percent"),
            "avg_latency_ms": st.column_config.NumberColumn("Avg latency (ms)", format="%.0f"),
            "p95_latency_ms": st.column_config.NumberColumn("P95 latency (ms)", format="%.0f"),
            "avg_ttft_ms": st.column_config.NumberColumn("Avg first token (ms)", format="%.0f"),
            "cost_per_1k_usd": st.column_config.NumberColumn("$ / 1K tokens", format="$%.5f"),
            "rating": st.column_config.NumberColumn("Avg rating", format="%.2f"),
            "sample_size": st.column_config.NumberColumn(
                "Sample size", help="Successful requests the latency figures rest on"
            ),
        },
    )


# --- budgets and alerts ----------------------------------------------------------------

if view == "Budgets & alerts":
    st.subheader("Alerts")
    alert_list = data.alerts(scope, minute)
    if not alert_list:
        st.success("No alerts right now.")
    for alert in alert_list:
        link = "&".join(f"{k}={v}" for k, v in alert.link.items())
        text = f"**{alert.at:%d %b %H:%M} UTC** · {alert.message} [Show the requests](?{link})"
        (st.error if alert.severity == "error" else st.warning)(text)

    st.subheader("Budgets")
    plans = data.budgets(scope, minute)
    if not plans:
        st.info("No budgets apply to this view. Admins set them with `switchboard budget set`.")
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "Budget": fc.label,
                        "Kind": "hard (refuses at 100%)"
                        if fc.budget.hard
                        else "soft (alerts only)",
                        "Spent": usd(fc.budget.spent_micros),
                        "Limit": usd(fc.budget.limit_micros),
                        "Used": f"{fc.percent:.0f}%",
                        "Projected month-end": usd(fc.projected_micros),
                        "Runs out": fc.run_out_day.isoformat()
                        if fc.run_out_day
                        else "not this month",
                    }
                    for fc, _ in plans
                ]
            ),
            hide_index=True,
            width="stretch",
        )
        labels = [fc.label for fc, _ in plans]
        chosen = st.selectbox("Burn-down for", labels)
        fc, frame = plans[labels.index(chosen)]
        st.progress(min(1.0, fc.percent / 100), text=f"{fc.percent:.0f}% of the limit used")
        st.plotly_chart(charts.burn_down(fc, frame, now), key="chart_burn")

    if user.is_admin:
        with st.expander("Alert webhook"), svc.sessions() as session:
            saved = webhook.get_webhook_url(session)
            st.caption(
                "New alerts are POSTed once each as JSON (Slack-compatible `text`). "
                + (f"Now: {webhook.mask_url(saved)}" if saved else "Not set.")
            )
            with st.form("webhook"):
                url = st.text_input(
                    "Webhook URL", placeholder="https://hooks.example.com/…", type="password"
                )
                clear = st.checkbox("Remove the webhook")
                if st.form_submit_button("Save"):
                    try:
                        with svc.sessions.begin() as s:
                            webhook.set_webhook_url(
                                s, "" if clear else url, actor=user.username, now=utc_now()
                            )
                        st.success("Webhook removed." if clear or not url else "Webhook saved.")
                    except SwitchboardError as exc:
                        st.error(exc.message)
        if saved:
            data.send_alerts(minute)


# --- what-if ---------------------------------------------------------------------------

if view == "What-if":
    st.caption(
        "What would this period have cost if some traffic had gone to another model? "
        "Recorded tokens are repriced at that model's current prices."
    )
    with st.form("whatif"):
        what = st.radio(
            "Traffic", ["Everything in the filters", "One task", "One model"], horizontal=True
        )
        c1, c2, c3 = st.columns(3)
        task = c1.selectbox("Task", options["task"] or ["(none)"])
        source_model = c2.selectbox("Model", options["model"] or ["(none)"])
        priced = [m.id for m in svc.catalog.models() if m.priced]
        target = c3.selectbox(
            "Reprice at",
            priced,
            index=priced.index("openai/gpt-4o-mini") if "openai/gpt-4o-mini" in priced else 0,
        )
        submitted = st.form_submit_button("Reprice")
    if submitted:
        try:
            with svc.sessions() as session:
                book = load_price_book(session, svc.catalog, now)
                result = whatif.what_if(
                    session,
                    filters,
                    scope,
                    target=target,
                    book=book,
                    now=now,
                    task=task if what == "One task" else None,
                    source_model=source_model if what == "One model" else None,
                )
            st.session_state[state.ANALYTICS_WHATIF] = result
        except SwitchboardError as exc:
            st.error(exc.message)
    result = st.session_state.get(state.ANALYTICS_WHATIF)
    if isinstance(result, whatif.WhatIf):
        c1, c2, c3 = st.columns(3)
        c1.metric("Recorded cost", usd(result.current_micros))
        c2.metric(f"At {result.target}", usd(result.target_micros))
        diff = result.difference_micros
        c3.metric("Difference", ("-" if diff < 0 else "+") + usd(abs(diff)), delta_color="inverse")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "Task": r.task or "(no task)",
                        "Requests": r.requests,
                        "Tokens in": r.prompt_tokens,
                        "Tokens out": r.completion_tokens,
                        "Recorded": usd(r.current_micros),
                        f"At {result.target}": usd(r.target_micros),
                        "Difference": ("-" if r.difference_micros < 0 else "+")
                        + usd(abs(r.difference_micros)),
                        "Would not fit": r.too_long,
                    }
                    for r in result.rows
                ]
            ),
            hide_index=True,
            width="stretch",
        )
        if result.too_long:
            st.warning(
                f"{result.too_long:,} requests had prompts longer than "
                f"{result.target}'s context window ({result.context_window:,} tokens); "
                "they could not have gone there as they were."
            )
        if result.unpriced_requests:
            st.info(
                f"{result.unpriced_requests:,} requests were recorded without a price, so "
                "the difference overstates the change for them."
            )
        st.caption(
            "Repriced at the plain input and output prices (no cache discount), "
            "rounded to the micro-dollar once per task."
        )


# --- recent requests -------------------------------------------------------------------

if view == "Requests":
    cursors: list[Any] = st.session_state.setdefault(state.ANALYTICS_CURSORS, [None])
    with svc.sessions() as session:
        page = recent.recent_requests(session, filters, scope, before=cursors[-1])
    shown = page.rows.assign(
        cost=[usd(int(c)) if pd.notna(c) else "unpriced" for c in page.rows["cost_micros"]]
    ).drop(columns=["cost_micros"])
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_config={
            "at": st.column_config.DatetimeColumn("Time (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "id": "Request",
            "username": "User",
            "requested_model": "Requested",
            "served_model": "Served",
            "prompt_tokens": "In",
            "completion_tokens": "Out",
            "latency_ms": "Latency (ms)",
        },
    )
    c1, c2, c3 = st.columns([1, 1, 4])
    if c1.button("Newer", disabled=len(cursors) == 1):
        cursors.pop()
        st.rerun()
    if c2.button("Older", disabled=page.next_cursor is None):
        cursors.append(page.next_cursor)
        st.rerun()
    c3.caption(f"Page {len(cursors)} · 50 per page, newest first")
    if not page.rows.empty:
        chosen_id = st.selectbox(
            "Show the attempts of", list(page.rows["id"]), index=None, placeholder="Pick a request"
        )
        if chosen_id:
            with svc.sessions() as session:
                tries = recent.attempts_of(session, chosen_id, scope)
            if tries:
                st.dataframe(
                    pd.DataFrame(tries).drop(columns=["id", "request_id"]),
                    hide_index=True,
                    width="stretch",
                )
            else:
                st.caption("This request made no upstream call (refused before any attempt).")


# --- exports ---------------------------------------------------------------------------


def _today_tag(day: date) -> str:
    return day.strftime("%Y%m%d")


if view == "Export":
    st.caption("CSV files of exactly what the filters above select, costs in exact dollars.")
    with svc.sessions() as session:
        summary = "".join(exports.summary_csv(session, filters, scope))
    st.download_button(
        "Download cost per user and team (CSV)",
        summary,
        file_name=f"switchboard-cost-summary-{_today_tag(today)}.csv",
        mime="text/csv",
    )
    key = flt.to_query_params(filters)
    prepared = st.session_state.get(state.ANALYTICS_EXPORT)
    if st.button("Prepare the requests CSV"):
        with st.spinner("Writing the CSV…"), svc.sessions() as session:
            body = "".join(exports.requests_csv(session, filters, scope))
        prepared = st.session_state[state.ANALYTICS_EXPORT] = (key, body)
    if prepared and prepared[0] == key:
        lines = prepared[1].count("\n") - 1
        st.download_button(
            f"Download {lines:,} requests (CSV)",
            prepared[1],
            file_name=f"switchboard-requests-{_today_tag(today)}.csv",
            mime="text/csv",
        )
    st.caption(
        "From a shell: `switchboard usage export --since … --until … [--user …] [--summary]`."
    )
