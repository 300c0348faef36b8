"""Pieces of the chat page: the conversation list, one message with its badge, totals.

Model output is only ever drawn with st.markdown, which escapes HTML.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import streamlit as st

from core.chat import view
from core.chat.conversations import (
    STATUS_INCOMPLETE,
    STATUS_STOPPED,
    ConversationInfo,
    MessageInfo,
    Totals,
)
from ui import state


def totals_text(totals: Totals) -> str:
    return (
        f"{totals.tokens:,} tokens ({totals.prompt_tokens:,} in / "
        f"{totals.completion_tokens:,} out) · {view.money(totals.cost_micros)}"
    )


def conversation_list(
    listing: Sequence[ConversationInfo],
    *,
    total: int,
    open_id: str | None,
    on_open: Callable[[str], None],
    on_new: Callable[[], None],
) -> None:
    """The sidebar list, newest first, with search and a New chat button."""
    st.button(
        "New chat", icon=":material/add:", on_click=on_new, width="stretch", key="sb_chat_new"
    )
    query = st.text_input(
        "Search conversations", key=state.CHAT_SEARCH, placeholder="words in a title or message"
    )
    if not listing:
        st.caption(
            "No conversation matches."
            if query.strip()
            else "No conversations yet. Type below to start one."
        )
        return
    for conv in listing:
        st.button(
            conv.title,
            key=f"{state.CHAT_OPEN_PREFIX}{conv.id}",
            on_click=on_open,
            args=(conv.id,),
            width="stretch",
            type="primary" if conv.id == open_id else "tertiary",
            help=f"Last used {conv.updated_at:%Y-%m-%d %H:%M} UTC · {conv.model}",
        )
    if not query.strip() and total > len(listing):
        st.caption(f"Showing the newest {len(listing)} of {total}. Search to find older ones.")


def answer_meta(details: Mapping[str, Any], status: str) -> None:
    """Under an answer: its status, badge, fallback notice and attempts."""
    if status == STATUS_STOPPED:
        st.caption(
            ":material/stop_circle: Stopped. The text above is what arrived before you stopped it."
        )
    elif status == STATUS_INCOMPLETE:
        reason = details.get("error") or "the answer was cut off"
        st.warning(f"Incomplete: {reason}", icon=":material/warning:")
    if details.get("model"):
        st.caption(view.badge(details))
    notice = view.fallback_notice(details) or view.picked_notice(details)
    if notice:
        st.info(notice, icon=":material/alt_route:")
    attempts = details.get("attempts") or []
    if len(attempts) > 1 or notice:
        with st.expander(f"Attempts ({len(attempts)})"):
            st.markdown("\n".join(view.attempt_lines(attempts)))


def message(item: MessageInfo) -> None:
    with st.chat_message(item.role):
        if item.content:
            st.markdown(item.content)
        else:
            st.caption("(no text)")
        if item.role == "assistant":
            answer_meta(item.details, item.status)
