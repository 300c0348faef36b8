"""The chat page's widget callbacks. They run before the script, so its run draws the new state.

Each changes session state, or the database through ``core``, and leaves a notice for
the next run; none draws anything itself.
"""

from __future__ import annotations

from decimal import Decimal

import streamlit as st
from sqlalchemy.orm import Session, sessionmaker

from core.accounts.auth import UserInfo
from core.chat import conversations
from core.clock import utc_now
from core.errors import SwitchboardError
from core.money import budgets
from ui import state


def forget_turn_state() -> None:
    for key in (state.CHAT_FAILED, state.CHAT_PENDING, state.CHAT_CONFIRM_DELETE):
        st.session_state.pop(key, None)


def open_conversation(conversation_id: str) -> None:
    st.session_state[state.CHAT_CONVERSATION] = conversation_id
    forget_turn_state()


def new_chat() -> None:
    ss = st.session_state
    ss[state.CHAT_CONVERSATION] = None
    ss[state.CHAT_LOADED] = None
    ss.pop(state.CHAT_TITLE, None)
    forget_turn_state()


def task_changed() -> None:
    # The new task's route picks the model. Popping the picker's key is not enough: the
    # browser keeps showing (and sends back) the old choice, so the page sets it anew.
    st.session_state[state.CHAT_FOLLOW_ROUTE] = True


def save_threshold(sessions: sessionmaker[Session], user_id: int) -> None:
    ss = st.session_state
    dollars = ss.get(state.CHAT_CONFIRM_ABOVE)
    micros = int(Decimal(str(dollars or 0)) * 1_000_000)
    with sessions.begin() as s:
        conversations.set_confirm_above(s, user_id, micros, utc_now())
    ss[state.CHAT_NOTICE] = (
        f"You will be asked before messages that may cost over {budgets.usd(micros)}."
    )


def send_again() -> None:
    ss = st.session_state
    text = str(ss.get(state.CHAT_DRAFT) or "")
    ss[state.CHAT_RESEND] = {"prompt": text, "confirmed": False}
    ss.pop(state.CHAT_FAILED, None)


def discard_failed() -> None:
    st.session_state.pop(state.CHAT_FAILED, None)


def confirm_pending() -> None:
    ss = st.session_state
    pending = ss.pop(state.CHAT_PENDING, None)
    if pending:
        ss[state.CHAT_RESEND] = {"prompt": pending["prompt"], "confirmed": True}


def cancel_pending() -> None:
    ss = st.session_state
    pending = ss.pop(state.CHAT_PENDING, None)
    if pending:  # back into the editable draft, so nothing typed is lost
        ss[state.CHAT_DRAFT] = pending["prompt"]
        ss[state.CHAT_FAILED] = {
            "prompt": pending["prompt"],
            "message": "Not sent. Edit the message or send it again.",
        }


def rename(sessions: sessionmaker[Session], user_id: int, conversation_id: str) -> None:
    ss = st.session_state
    try:
        with sessions.begin() as s:
            conversations.rename(
                s, user_id, conversation_id, str(ss.get(state.CHAT_TITLE, "")), utc_now()
            )
        ss[state.CHAT_NOTICE] = "Renamed."
    except SwitchboardError as exc:
        ss[state.CHAT_NOTICE] = f"error:{exc.message}"


def ask_delete(conversation_id: str) -> None:
    st.session_state[state.CHAT_CONFIRM_DELETE] = conversation_id


def cancel_delete() -> None:
    st.session_state.pop(state.CHAT_CONFIRM_DELETE, None)


def delete_confirmed(sessions: sessionmaker[Session], user: UserInfo, conversation_id: str) -> None:
    ss = st.session_state
    try:
        with sessions.begin() as s:
            conversations.delete_conversation(
                s, user.id, conversation_id, actor=user.username, now=utc_now()
            )
        ss[state.CHAT_NOTICE] = "Conversation deleted."
    except SwitchboardError as exc:
        ss[state.CHAT_NOTICE] = f"error:{exc.message}"
    ss.pop(state.CHAT_CONFIRM_DELETE, None)
    new_chat()
