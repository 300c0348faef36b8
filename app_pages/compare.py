"""Compare: one prompt to 2-4 models at once, blind voting, saved and shared sessions, batches."""

from __future__ import annotations

import streamlit as st

from core.accounts import auth
from core.compare import comparisons
from core.compare.comparisons import SessionView
from core.compare.rounds import MAX_MODELS, MIN_MODELS
from core.errors import SwitchboardError
from ui import compare_actions as actions
from ui import state
from ui.compare_form import new_comparison_form
from ui.compare_session import session_panel
from ui.resources import services
from ui.session import current_user

user = current_user()
svc = services()

st.title("Compare")
st.caption(
    f"Send one prompt to {MIN_MODELS}–{MAX_MODELS} models at once and vote for the best answer. "
    "Votes feed the team leaderboard and cost-optimised routing."
)

# Which session is open: the URL wins, so a shared link opens straight away.
linked = st.query_params.get("session")
if linked and linked != st.session_state.get(state.COMPARE_SESSION):
    st.session_state[state.COMPARE_SESSION] = linked
active_id = st.session_state.get(state.COMPARE_SESSION)
if flash := st.session_state.pop(state.COMPARE_NOTICE, None):
    st.success(flash)

with svc.sessions() as s:
    me = auth.caller_for(s, user.id)
    listed = comparisons.list_sessions(s, me)
    model_sets = comparisons.list_model_sets(s, me)

view: SessionView | None = None
if active_id:
    try:
        with svc.sessions() as s:
            view = comparisons.open_session(s, active_id, me)
        st.query_params["session"] = active_id
    except SwitchboardError as exc:
        st.error(exc.message)
        actions.open_session_id(None)

with st.expander(f"Saved sessions ({len(listed)})", expanded=False):
    if not listed:
        st.caption("No sessions yet. Your comparisons, and those your team shares, show here.")
    else:
        chosen = st.selectbox(
            "Your sessions and your team's shared ones",
            listed,
            key=state.COMPARE_OPEN,
            format_func=lambda x: (
                f"{x.title} · {x.owner}{'' if x.mine else ' (shared)'} · "
                f"{x.rounds} round{'s' if x.rounds != 1 else ''} · "
                f"{x.created_at:%Y-%m-%d %H:%M} UTC"
            ),
        )
        if st.button("Open", disabled=chosen is None):
            actions.open_session_id(chosen.id if chosen else None)
            st.rerun()

if view is not None:
    session_panel(svc, me, view)
else:
    new_comparison_form(svc, me, model_sets)
