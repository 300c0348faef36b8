"""Sending one chat message: cost check, the streamed answer with its Stop button, and the
failure box when nothing came back."""

from __future__ import annotations

import streamlit as st

from core.chat import view
from core.chat.conversations import Totals
from core.chat.turns import ChatTurn, TurnPlan
from core.errors import SwitchboardError
from ui import state
from ui.resources import Services


def fail(prompt: str, error: SwitchboardError, lines: list[str] | None = None) -> None:
    """Keep the prompt and say why it failed; the next run draws the failure box."""
    st.session_state[state.CHAT_FAILED] = {
        "prompt": prompt,
        "message": view.error_advice(error),
        "attempts": lines or [],
    }
    st.session_state[state.CHAT_DRAFT] = prompt
    st.rerun()


def send(
    svc: Services, plan: TurnPlan, confirmed: bool, threshold_micros: int, totals: Totals
) -> None:
    """Send ``plan`` unless it needs cost confirmation first, streaming the answer in place."""
    ss = st.session_state
    prompt = plan.prompt
    if not prompt.strip():
        st.error("Type a message first.")
        return
    ss.pop(state.CHAT_FAILED, None)
    ss.pop(state.CHAT_DRAFT, None)
    try:
        cost = svc.runtime.gateway.estimate(plan.request("estimate", None))
    except SwitchboardError as exc:
        fail(prompt, exc)
        return
    if not confirmed and view.needs_confirmation(cost, threshold_micros):
        ss[state.CHAT_PENDING] = {"prompt": prompt, "high": cost.high_micros}
        st.rerun()
    with st.chat_message("user"):
        st.markdown(prompt)
    with st.chat_message("assistant"):
        turn = ChatTurn(svc.sessions, svc.gateway, plan)
        try:
            with st.spinner("Waiting for the first token…"):
                error = turn.start()
        except SwitchboardError as exc:
            error = exc
        if error is not None:
            lines = (
                view.attempt_lines(view.details_of(turn.summary)["attempts"])
                if turn.summary
                else []
            )
            turn.close()
            fail(prompt, error, lines)
        # Any widget click reruns the script, which interrupts the stream below; the
        # finally then saves what arrived as "stopped" and the ledger records it so.
        # Session state is set first: an interrupted run must not write it afterwards.
        ss[state.CHAT_CONVERSATION] = ss[state.CHAT_LOADED] = turn.conversation_id
        ss[state.CHAT_INFLIGHT] = turn.saved
        st.button("Stop", icon=":material/stop:", key="sb_chat_stop")
        texts = turn.texts()
        try:
            st.write_stream(texts)
        finally:
            texts.close()
            turn.close()
    ss.pop(state.CHAT_INFLIGHT, None)
    if turn.summary is not None:
        ss[state.CHAT_SESSION_TOTALS] = totals.plus(
            turn.summary.usage.prompt_tokens,
            turn.summary.usage.completion_tokens,
            turn.summary.cost_micros,
        )
    st.rerun()  # draw the stored answer with its badge, and the new totals
