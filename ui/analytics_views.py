"""The analytics views: each draws one tab's charts and tables for a scope and filters.

Only the chosen view runs, which keeps every rerun fast on a large ledger.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

import pandas as pd
import streamlit as st

from core.accounts.auth import UserInfo
from core.analytics import exports, recent, webhook, whatif
from core.analytics import filters as flt
from core.analytics.filters import Filters
from core.analytics.scope import Scope
from core.clock import utc_now
from core.errors import SwitchboardError
from core.money.display import percent_text, usd
from core.money.pricing import load_price_book
from ui import analytics_charts as charts
from ui import analytics_data as data
from ui import analytics_tables as tables
from ui import chart_style as style
from ui import state
from ui.resources import Services


def overview(scope: Scope, filters: Filters) -> None:
    """Cost over time, tokens, cost by task, error spikes, and cost per person and team."""
    c1, c2 = st.columns([3, 1])
    stack = c2.radio("Stack by", ["provider", "model"], horizontal=True)
    by: Literal["provider", "model"] = "model" if stack == "model" else "provider"
    hourly_ok = filters.days <= 14
    interval = c2.radio(
        "Interval",
        ["day", "hour"],
        horizontal=True,
        disabled=not hourly_ok,
        help=None if hourly_ok else "Hourly is available for up to 14 days.",
    )
    grain: Literal["day", "hour"] = "hour" if hourly_ok and interval == "hour" else "day"
    style.draw(
        c1,
        charts.cost_over_time(data.cost_over_time(scope, filters, by, grain), by, grain),
        key="chart_cost_time",
        title=f"Cost per {grain}, by {by}",
        empty="No priced requests in this period, so there is no cost to chart yet.",
    )
    c1, c2 = st.columns(2)
    style.draw(
        c1,
        charts.tokens_by_provider(data.tokens_by_provider(scope, filters)),
        key="chart_tokens",
        title="Tokens by provider",
        empty="No tokens were used in this period.",
    )
    style.draw(
        c2,
        charts.cost_bar(data.cost_by(scope, filters, "task"), "Cost by task"),
        key="chart_task",
        title="Cost by task",
        empty="No priced requests in this period.",
    )
    day_rates, spikes = data.rates(scope, filters)
    style.draw(
        st.container(),
        charts.rates_over_time(day_rates, spikes),
        key="chart_rates",
        title="Fallback and error rate per day",
        empty="No requests in this period, so there are no rates to chart.",
    )
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
        style.draw(
            c1,
            charts.cost_bar(by_user, "Cost by user (top 20)"),
            key="chart_users",
            title="Cost by user",
            empty="Nobody in scope spent money in this period.",
        )
        with c2:
            tables.cost_table(by_user, "User")
        if scope.kind == "all":
            st.subheader("Cost by team")
            tables.cost_table(data.cost_by(scope, filters, "team"), "Team")


def models(scope: Scope, filters: Filters) -> None:
    """Latency distribution and one row of performance figures per model."""
    style.draw(
        st.container(),
        charts.latency_distribution(data.latency_histograms(scope, filters)),
        key="chart_latency",
        title="Latency of successful requests, per model",
        empty="No successful requests in this period, so there is no latency to chart.",
    )
    st.subheader("Model performance")
    tables.performance_table(data.model_performance(scope, filters))


def budgets_and_alerts(
    svc: Services, user: UserInfo, scope: Scope, minute: datetime, now: datetime
) -> None:
    """Current alerts, budgets with their month-end projection, and the admin's webhook."""
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
                        "Used": percent_text(fc.percent / 100),
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
        used = percent_text(fc.percent / 100)
        st.progress(min(1.0, fc.percent / 100), text=f"{used} of the limit used")
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


def what_if(
    svc: Services, scope: Scope, filters: Filters, options: dict[str, list[str]], now: datetime
) -> None:
    """Reprice the period's traffic at another model's prices."""
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
                repriced = whatif.what_if(
                    session,
                    filters,
                    scope,
                    target=target,
                    book=book,
                    now=now,
                    task=task if what == "One task" else None,
                    source_model=source_model if what == "One model" else None,
                )
            st.session_state[state.ANALYTICS_WHATIF] = repriced
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


def request_list(svc: Services, scope: Scope, filters: Filters) -> None:
    """The recent requests, 50 a page by keyset, and the attempts of one of them."""
    cursors: list[Any] = st.session_state.setdefault(state.ANALYTICS_CURSORS, [None])
    with svc.sessions() as session:
        page = recent.recent_requests(session, filters, scope, before=cursors[-1])
    tables.requests_table(page.rows)
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
                tables.attempts_table(tries)
            else:
                st.caption("This request made no upstream call (refused before any attempt).")


def _today_tag(day: date) -> str:
    return day.strftime("%Y%m%d")


def export(svc: Services, scope: Scope, filters: Filters, today: date) -> None:
    """CSV downloads of exactly what the filters select."""
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
