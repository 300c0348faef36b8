"""Home: what a person wants to see after signing in, one panel each.

This month's spend against the budget; recent conversations and comparisons; the
providers this person can use and their health; and, for managers and admins, the
spend and alerts of everyone they look after. Every figure comes from the same core
query the page it links to uses, so Home never disagrees with My account or Analytics.
"""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from core.accounts.auth import UserInfo
from core.analytics.filters import Filters, preset_range, to_query_params
from core.analytics.scope import Scope
from core.chat import conversations
from core.compare import comparisons
from core.money import spend
from core.money.display import percent_text, usd
from core.request import Caller
from core.settings import endpoints, provider_status
from ui import analytics_data, navigation
from ui.chat_actions import open_conversation
from ui.resources import Services

RECENT = 5  # conversations and comparisons listed


def _page(file: str) -> str:
    return f"{navigation.PAGES_DIR}/{file}"


def month_panel(svc: Services, user: UserInfo, now: datetime) -> None:
    """Spent this month against the budget: the same one figure My account shows."""
    with svc.sessions() as session:
        month = spend.standing(session, user.id, now)
    st.subheader("Your spend this month")
    c1, c2, c3 = st.columns(3)
    c1.metric("Spent this month", usd(month.spent_micros))
    c2.metric("Requests this month", f"{month.requests:,}")
    budget = month.budget
    if budget is None:
        c3.metric("Budget", "none set", help="Without a budget your spending is not capped.")
    else:
        c3.metric("Budget left", usd(budget.remaining_micros))
        share = month.share_used or 0.0
        kind = "hard: requests stop at the limit" if budget.hard else "soft: alerts only"
        st.progress(
            min(1.0, share),
            text=f"{percent_text(share)} of your {usd(budget.limit_micros)} budget used "
            f"({kind}) · resets on {budget.resets_on:%d %b}",
        )
    if month.unpriced_requests:
        st.caption(
            f"{month.unpriced_requests:,} request(s) used unpriced models; their cost is "
            "unknown and not included."
        )


def recent_panel(svc: Services, me: Caller) -> None:
    """The latest conversations (open them in Chat) and comparisons (open them in Compare)."""
    with svc.sessions() as session:
        chats = conversations.list_conversations(session, me.user_id, limit=RECENT)
        rounds = comparisons.list_sessions(session, me, limit=RECENT)
    left, right = st.columns(2)
    with left:
        st.subheader("Recent conversations")
        if not chats:
            st.caption("No conversations yet.")
            st.page_link(_page("chat.py"), label="Start a chat", icon=":material/chat:")
        for chat in chats:
            c1, c2 = st.columns([4, 1])
            c1.markdown(f"**{chat.title}**  \n{chat.model} · {chat.updated_at:%d %b %H:%M} UTC")
            if c2.button("Open", key=f"home_chat_{chat.id}"):
                open_conversation(chat.id)
                st.switch_page(_page("chat.py"))
    with right:
        st.subheader("Recent comparisons")
        if not rounds:
            st.caption("No comparisons yet.")
        for found in rounds:
            who = "" if found.mine else f" · shared by {found.owner}"
            st.page_link(
                _page("compare.py"),
                label=f"{found.title} ({found.rounds} round{'s' * (found.rounds != 1)}){who}",
                query_params={"session": found.id},
                icon=":material/compare:",
            )
        if not rounds:
            st.page_link(_page("compare.py"), label="Compare models", icon=":material/compare:")


def health_panel(svc: Services, me: Caller, now: datetime) -> None:
    """The providers this person can use, and whether each is working right now."""
    gw = svc.runtime.gateway
    with svc.sessions() as session:
        statuses = provider_status.provider_statuses(
            session,
            me,
            catalog_providers=svc.catalog.providers(),
            endpoints=endpoints.list_endpoints(session),
            environ=gw.environ,
            breakers=gw.breaker_states(),
            now=now,
        )
    usable = [s for s in statuses if s.available]
    st.subheader("Provider health for you")
    if not usable:
        st.warning(
            "No provider is available to you yet: add a key on Providers & keys, or ask an "
            "admin for a team or organisation key."
        )
        st.page_link(_page("providers.py"), label="Providers & keys", icon=":material/key:")
        return
    paused = [s for s in usable if not s.breaker.startswith("working")]
    st.caption(
        f"{len(usable)} provider(s) available to you"
        + (f"; {len(paused)} not working right now." if paused else ", all working.")
    )
    st.dataframe(
        [{"Provider": s.label, "Key used": s.key_words, "Health": s.breaker} for s in usable],
        hide_index=True,
        width="stretch",
    )


def team_panel(scope: Scope, now: datetime) -> None:
    """Managers: their team's spend and alerts this month; admins: everyone's."""
    today = now.date()
    start, end = preset_range("this-month", today)
    month = Filters(start, end, "this-month")
    minute = now.replace(second=0, microsecond=0)
    figures, _ = analytics_data.key_figures(scope, month)
    by_user = analytics_data.cost_by(scope, month, "user")
    alerts = analytics_data.alerts(scope, minute)
    st.subheader(f"Spend and alerts: {scope.label}")
    c1, c2, c3 = st.columns(3)
    c1.metric("Spent this month", usd(figures.cost_micros))
    c2.metric("Requests this month", f"{figures.requests:,}")
    c3.metric("Alerts now", f"{len(alerts):,}")
    if not by_user.empty:
        top = by_user.head(RECENT)
        st.dataframe(
            [
                {"Person": str(r.name), "Spent": usd(int(r.cost_micros)), "Requests": r.requests}
                for r in top.itertuples()
            ],
            hide_index=True,
            width="stretch",
        )
    for alert in alerts[:RECENT]:
        (st.error if alert.severity == "error" else st.warning)(alert.message)
    st.page_link(
        _page("analytics.py"),
        label="Open Analytics for this month",
        query_params=to_query_params(month),
        icon=":material/monitoring:",
    )
