"""An open comparison session: its facts, sharing, rounds with their votes, follow-up,
exports and deletion."""

from __future__ import annotations

from functools import partial

import streamlit as st

from core.clock import utc_now
from core.compare import comparisons, export
from core.compare.comparisons import SessionView
from core.money.display import usd_or_unpriced as usd
from core.request import Caller
from ui import compare_actions as actions
from ui import state
from ui.compare_view import draw_round
from ui.resources import Services


def session_panel(svc: Services, me: Caller, view: SessionView) -> None:
    """Everything about ``view`` that ``me`` may see and do."""
    top = st.columns([4, 1])
    top[0].subheader(view.title)
    if top[1].button("New comparison", width="stretch"):
        actions.open_session_id(None)
        st.rerun()
    names = ", ".join(view.models) if view.all_revealed else f"{len(view.models)} models (hidden)"
    st.caption(
        f"By {view.owner} · task {view.task or '(none)'} · {names} · "
        f"{'blind' if view.blind else 'names shown'} · fallbacks "
        f"{'on' if view.fallbacks else 'off'} · total cost {usd(view.cost_micros)}"
    )
    if view.read_only:
        st.info(
            f"Shared by {view.owner}: read-only. You can add your own votes; "
            "blind names show once you vote on a round."
        )
    else:
        share = st.toggle(
            "Share with my team (read-only, they can vote)",
            value=view.shared,
            key=state.compare_share_key(view.id),
        )
        if share != view.shared:
            with svc.sessions.begin() as s:
                comparisons.set_shared(s, me, view.id, share, now=utc_now())
            st.rerun()
        if view.shared:
            st.caption("Link for your team:")
            st.code(f"{(st.context.url or '').rstrip('/')}?session={view.id}", language=None)

    batch = [r for r in view.rounds if r.kind == "batch"]
    if batch:
        st.markdown("##### Batch results")
        st.dataframe(export.result_rows(view), hide_index=True, width="stretch")
        totals = export.model_totals(view)
        if totals:
            st.markdown("##### Totals per model")
            st.dataframe(totals, hide_index=True, width="stretch")
    for r in view.rounds:
        if r.kind == "batch":
            with st.expander(f"Prompt {r.seq}: {r.prompt[:80]}"):
                draw_round(r, on_vote=partial(actions.vote, svc, me.user_id))
        else:
            st.markdown(f"##### Round {r.seq}")
            draw_round(r, on_vote=partial(actions.vote, svc, me.user_id))

    if not view.read_only and not batch:
        followup = st.text_area(
            "Follow-up (each column continues its own conversation)", key=state.COMPARE_FOLLOWUP
        )
        actions.show_estimate(svc, me.user_id, view.settings, followup)
        if st.button("Send follow-up", type="primary"):
            actions.send_round(
                svc,
                me.user_id,
                view.settings,
                followup,
                session_id=view.id,
                title=view.title,
                shared=view.shared,
            )

    st.markdown("##### Export")
    ex = st.columns(3)
    ex[0].download_button(
        "Markdown",
        export.to_markdown(view),
        file_name=f"comparison-{view.id}.md",
        mime="text/markdown",
    )
    ex[1].download_button(
        "CSV", export.to_csv(view), file_name=f"comparison-{view.id}.csv", mime="text/csv"
    )
    ex[2].download_button(
        "JSON",
        export.to_json(view),
        file_name=f"comparison-{view.id}.json",
        mime="application/json",
    )
    if not view.read_only:
        with st.expander("Delete this session"):
            sure = st.checkbox(
                "Yes, delete it with every round, answer and vote", key=state.COMPARE_DELETE_CONFIRM
            )
            if st.button("Delete session", disabled=not sure):
                with svc.sessions.begin() as s:
                    comparisons.delete_session(s, me, view.id, now=utc_now())
                actions.notice("Session deleted.")
                actions.open_session_id(None)
                st.rerun()
