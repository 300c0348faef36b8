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


def count(turn: ChatTurn) -> None:
    """Add a finished or stopped answer to this browser session's totals."""
    summary = turn.final_summary
    if summary is None:
        return
    totals = st.session_state.get(state.CHAT_SESSION_TOTALS) or Totals()
    st.session_state[state.CHAT_SESSION_TOTALS] = totals.plus(
        summary.usage.prompt_tokens, summary.usage.completion_tokens, summary.cost_micros
    )


def settle_interrupted() -> None:
    """After a Stop: wait until the interrupted turn has saved its answer, then count it."""
    turn = st.session_state.pop(state.CHAT_INFLIGHT, None)
    if isinstance(turn, ChatTurn):
        turn.saved.wait(timeout=10)
        count(turn)


def send(svc: Services, plan: TurnPlan, confirmed: bool, threshold_micros: int) -> None:
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
        ss[state.CHAT_INFLIGHT] = turn  # the next run counts it if this one is interrupted
        st.button("Stop", icon=":material/stop:", key="sb_chat_stop")
        texts = turn.texts()
        try:
            st.write_stream(texts)
        finally:
            texts.close()
            turn.close()
    ss.pop(state.CHAT_INFLIGHT, None)
    count(turn)
    st.rerun()  # draw the stored answer with its badge, and the new totals
