"""The chat page's controls: per-message settings, a conversation's Manage menu, and the
notices for a send that failed or waits for cost confirmation."""

from __future__ import annotations

from typing import Any

import streamlit as st
from sqlalchemy.orm import Session, sessionmaker

from core.accounts.auth import UserInfo
from core.chat import export
from core.chat.conversations import ConversationInfo, MessageInfo
from core.money import budgets
from core.request import micros_to_usd
from ui import chat_actions as actions
from ui import state


def settings_expander(
    sessions: sessionmaker[Session], user_id: int, threshold_micros: int
) -> dict[str, Any]:
    """Temperature, max tokens and system prompt for the next message; the cost threshold."""
    with st.expander("Settings: temperature, max tokens, system prompt, cost confirmation"):
        c1, c2 = st.columns(2)
        temperature = c1.number_input(
            "Temperature",
            min_value=0.0,
            max_value=2.0,
            value=None,
            step=0.1,
            key=state.CHAT_TEMPERATURE,
            placeholder="model default",
        )
        max_tokens = c2.number_input(
            "Max tokens",
            min_value=1,
            max_value=1_000_000,
            value=None,
            step=256,
            key=state.CHAT_MAX_TOKENS,
            placeholder="route or model default",
        )
        system_prompt = st.text_area(
            "System prompt",
            key=state.CHAT_SYSTEM_PROMPT,
            placeholder="e.g. You are a concise technical editor.",
        )
        t1, t2 = st.columns([3, 1], vertical_alignment="bottom")
        # Saved only by the button: a widget value alone never changes a stored setting.
        t1.number_input(
            "Ask me before sending when a message may cost more than ($)",
            min_value=0.0,
            step=0.01,
            format="%.4f",
            key=state.CHAT_CONFIRM_ABOVE,
            value=float(micros_to_usd(threshold_micros)),
        )
        t2.button(
            "Save threshold",
            on_click=actions.save_threshold,
            args=(sessions, user_id),
            key="sb_chat_save_threshold",
        )
    return {
        "temperature": temperature,
        "max_tokens": int(max_tokens) if max_tokens else None,
        "system_prompt": system_prompt or "",
    }


def conversation_header(
    conv: ConversationInfo,
    items: list[MessageInfo],
    sessions: sessionmaker[Session],
    user: UserInfo,
) -> None:
    """The title, the Manage menu (rename, export, delete) and the delete confirmation."""
    head, manage = st.columns([4, 1], vertical_alignment="center")
    head.subheader(conv.title)
    with manage.popover("Manage", icon=":material/more_horiz:", width="stretch"):
        st.text_input("Title", value=conv.title, key=state.CHAT_TITLE, max_chars=200)
        st.button(
            "Rename",
            on_click=actions.rename,
            args=(sessions, user.id, conv.id),
            key="sb_chat_rename",
        )
        st.download_button(
            "Export as Markdown",
            export.to_markdown(conv, items),
            file_name=export.file_name(conv, "md"),
            mime="text/markdown",
            on_click="ignore",
            key="sb_chat_export_md",
        )
        st.download_button(
            "Export as JSON",
            export.to_json(conv, items),
            file_name=export.file_name(conv, "json"),
            mime="application/json",
            on_click="ignore",
            key="sb_chat_export_json",
        )
        st.button(
            "Delete…",
            on_click=actions.ask_delete,
            args=(conv.id,),
            key="sb_chat_delete",
            icon=":material/delete:",
        )
    if st.session_state.get(state.CHAT_CONFIRM_DELETE) == conv.id:
        st.warning(
            f"Delete “{conv.title}” and its {len(items)} messages? This cannot be "
            "undone. The usage ledger keeps its cost records."
        )
        y, n = st.columns(2)
        y.button(
            "Yes, delete",
            type="primary",
            on_click=actions.delete_confirmed,
            args=(sessions, user, conv.id),
            key="sb_chat_delete_yes",
        )
        n.button("Cancel", on_click=actions.cancel_delete, key="sb_chat_delete_no")


def failed_notice() -> None:
    """A send that got no answer: why, its attempts, and the prompt kept for another try."""
    ss = st.session_state
    failed = ss.get(state.CHAT_FAILED)
    if not failed:
        return
    st.error(failed["message"], icon=":material/error:")
    for line in failed.get("attempts", []):
        st.caption(line)
    if state.CHAT_DRAFT not in ss:
        ss[state.CHAT_DRAFT] = failed["prompt"]
    st.text_area("Your message (kept, so you can send it again)", key=state.CHAT_DRAFT)
    a, b = st.columns(2)
    a.button(
        "Send again",
        type="primary",
        on_click=actions.send_again,
        key="sb_chat_send_again",
        icon=":material/send:",
    )
    b.button("Discard", on_click=actions.discard_failed, key="sb_chat_discard")


def pending_notice(threshold_micros: int) -> None:
    """A message whose cost may pass the person's threshold, waiting for Send anyway."""
    pending = st.session_state.get(state.CHAT_PENDING)
    if not pending:
        return
    st.warning(
        f"This message may cost up to {budgets.usd(pending['high'])}, above your "
        f"confirmation threshold of {budgets.usd(threshold_micros)}. Send it anyway?",
        icon=":material/payments:",
    )
    st.markdown(f"> {pending['prompt'][:300]}")
    a, b = st.columns(2)
    a.button("Send anyway", type="primary", on_click=actions.confirm_pending, key="sb_chat_confirm")
    b.button("Cancel", on_click=actions.cancel_pending, key="sb_chat_cancel")
