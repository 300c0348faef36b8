"""Admin > Audit log: who changed what, filtered by person, action and date."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import streamlit as st

from core.clock import utc_now
from core.store import audit
from ui import settings
from ui.resources import Services


def audit_tab(svc: Services) -> None:
    c1, c2, c3 = st.columns(3)
    actor = c1.text_input("Who", key="audit_actor", placeholder="username or cli")
    action = c2.text_input("Action", key="audit_action", placeholder="e.g. key.set")
    since = c3.date_input("Since", value=utc_now().date() - timedelta(days=30), key="audit_since")
    with svc.sessions() as session:
        entries = audit.recent(
            session,
            limit=500,
            actor=actor.strip() or None,
            action=action.strip() or None,
            since=datetime.combine(since, time.min, tzinfo=UTC),
        )
    if entries:
        st.dataframe(
            [
                {
                    "When": settings.when(e.at),
                    "Who": e.actor,
                    "Action": e.action,
                    "Target": e.target,
                    "Details": ", ".join(f"{k}={v}" for k, v in e.details.items()),
                }
                for e in entries
            ],
            hide_index=True,
            width="stretch",
        )
        st.caption(f"{len(entries)} entries, newest first (at most 500).")
    else:
        st.info("No audit entries match these filters.")
