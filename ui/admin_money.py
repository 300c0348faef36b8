"""Admin > Budgets and Admin > Prices: monthly limits, and price overrides for unpriced or
mispriced models."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import streamlit as st

from core.clock import utc_now
from core.errors import InvalidInput, SwitchboardError
from core.money import budgets, pricing, spend
from core.money.display import usd
from core.request import MICROS_PER_USD
from ui import settings
from ui.admin_data import AdminData, parse_usd
from ui.resources import services


def budgets_tab(page: AdminData) -> None:
    svc, admin, users, teams = page.svc, page.admin, page.users, page.teams
    with svc.sessions() as session:
        all_budgets = budgets.list_budgets(session, utc_now())
    if all_budgets:
        st.dataframe(
            [
                {
                    "Budget": b.label,
                    "Limit": usd(b.limit_micros),
                    "Spent": usd(b.spent_micros),
                    "Held (in progress)": usd(b.reserved_micros),
                    "Left": usd(b.remaining_micros),
                    "Kind": "hard" if b.hard else "soft",
                    "Resets": b.resets_on.isoformat(),
                }
                for b in all_budgets
            ],
            hide_index=True,
            width="stretch",
        )
    else:
        st.info("No budgets yet. Without one, spending is unlimited.")
    scope = st.radio(
        "Budget for", ["user", "team", "provider"], horizontal=True, key="budget_scope"
    )
    targets: dict[str, str] = (
        {u.username: str(u.id) for u in users}
        if scope == "user"
        else {n: str(i) for i, n in teams}
        if scope == "team"
        else {p: p for p in sorted(page.known)}
    )
    with st.form("budget"):
        c1, c2, c3 = st.columns([2, 1, 1])
        target = c1.selectbox("Who or what", list(targets), key="budget_target")
        limit_text = c2.text_input("Monthly limit (USD)", key="budget_limit", placeholder="50")
        hard = c3.toggle("Hard (refuse requests)", value=True, key="budget_hard")
        if st.form_submit_button("Save budget", type="primary"):
            try:
                if target is None:
                    raise InvalidInput(f"There is no {scope} to budget for yet.")
                amount = parse_usd(limit_text, "The limit")
                if amount < 0:
                    raise InvalidInput("A budget cannot be negative; type zero or more dollars.")
                micros = int((amount * MICROS_PER_USD).to_integral_value())
                with svc.sessions.begin() as session:
                    info = budgets.set_budget(
                        session, scope, targets[target], micros, hard, admin.username, utc_now()
                    )
            except SwitchboardError as exc:
                st.error(exc.message)
            else:
                settings.routing_changed(svc)
                settings.flash(
                    f"Budget for {info.label}: {usd(info.limit_micros)} a month "
                    f"({'hard' if info.hard else 'soft'})."
                )


@st.cache_data(ttl=300, max_entries=2, show_spinner=False)
def unpriced_in_use(since: datetime) -> list[spend.UnpricedModel]:
    """A scan of a month of requests (seconds at 1M rows), so kept five minutes: every
    Admin run draws this tab, and a save on any tab would otherwise pay it again."""
    with services().sessions() as session:
        return spend.unpriced_in_use(session, since)


def prices_tab(page: AdminData) -> None:
    svc, admin, cat = page.svc, page.admin, page.svc.catalog
    resolver = svc.runtime.gateway.resolver()
    now = utc_now()
    with svc.sessions() as session:
        overrides = pricing.list_overrides(session)
    # Stepped to the hour so the cache key holds still between runs.
    unpriced = unpriced_in_use(now.replace(minute=0, second=0, microsecond=0) - timedelta(days=30))
    if unpriced:
        st.warning("Unpriced models in use (last 30 days); their cost is unknown until priced:")
        st.dataframe(
            [
                {"Model": u.model, "Requests": u.requests, "Last used": settings.when(u.last_used)}
                for u in unpriced
            ],
            hide_index=True,
            width="stretch",
        )
    if overrides:
        rows = []
        for o in overrides:
            info = cat.get(o.model_id)
            rows.append(
                {
                    "Model": o.model_id,
                    "From": settings.when(o.effective_from),
                    "Input $/1M": str(o.input_per_1m),
                    "Output $/1M": str(o.output_per_1m),
                    "Catalog input $/1M": str(info.input_price)
                    if info and info.input_price is not None
                    else "unpriced",
                    "Catalog output $/1M": str(info.output_price)
                    if info and info.output_price is not None
                    else "unpriced",
                    "By": o.created_by,
                }
            )
        st.dataframe(rows, hide_index=True, width="stretch")
    with st.form("price"):
        model_id = st.text_input(
            "Model id",
            key="price_model",
            value=unpriced[0].model if unpriced else "",
            placeholder="e.g. openai/gpt-4o or corp-vllm/llama3",
        )
        info = cat.get(model_id.strip()) if model_id.strip() else None
        if info is not None:
            st.caption(
                f"Catalog price: ${info.input_price} in / ${info.output_price} out per 1M tokens."
                if info.priced
                else "The catalog has no price for this model."
            )
        c1, c2, c3 = st.columns(3)
        in_text = c1.text_input("Input $ per 1M tokens", key="price_in")
        out_text = c2.text_input("Output $ per 1M tokens", key="price_out")
        day = c3.date_input("From (UTC)", value=now.date(), min_value=now.date(), key="price_from")
        if st.form_submit_button("Save price", type="primary"):
            try:
                start = (
                    now.replace(microsecond=0)
                    if day == now.date()
                    else datetime.combine(day, time.min, tzinfo=UTC)
                )
                with svc.sessions.begin() as session:
                    saved = pricing.set_price_override(
                        session,
                        model_id,
                        parse_usd(in_text, "The input price"),
                        parse_usd(out_text, "The output price"),
                        start,
                        admin.username,
                        utc_now(),
                        resolver.known,
                    )
            except SwitchboardError as exc:
                st.error(exc.message)
            else:
                settings.routing_changed(svc)
                settings.flash(
                    f"Price for {saved.model_id} from "
                    f"{settings.when(saved.effective_from)}: ${saved.input_per_1m} in, "
                    f"${saved.output_per_1m} out per 1M tokens."
                )
