"""Chat: streaming multi-turn chat through the gateway, with model choice, costs and history."""

from __future__ import annotations

import streamlit as st

from core.accounts import auth
from core.chat import conversations, turns, view
from core.chat.conversations import ConversationInfo, MessageInfo, Totals
from core.chat.turns import TurnPlan
from core.clock import utc_now
from core.errors import NotFound, SwitchboardError
from core.money import budgets
from ui import chat_actions as actions
from ui import chat_controls, chat_panels, state
from ui.chat_picker import task_and_model
from ui.chat_send import send, settle_interrupted
from ui.resources import services
from ui.session import active_profile, current_user

SIDEBAR_LIMIT = 30
ss = st.session_state
user = current_user()
svc = services()

# A Stop click (any click) starts this run while the interrupted one is still unwinding
# on its own thread; wait until it has saved the partial answer and count it, then read.
settle_interrupted()

conv: ConversationInfo | None = None
items: list[MessageInfo] = []
try:
    with svc.sessions() as s:
        caller = auth.caller_for(s, user.id)
        tasks = turns.known_tasks(s)
        open_id = ss.get(state.CHAT_CONVERSATION)
        if open_id:
            try:
                conv = conversations.get(s, user.id, open_id)
                items = conversations.messages(s, user.id, open_id)
            except NotFound:
                ss[state.CHAT_CONVERSATION] = open_id = None
        listing = conversations.list_conversations(
            s, user.id, query=str(ss.get(state.CHAT_SEARCH) or ""), limit=SIDEBAR_LIMIT
        )
        conversation_count = conversations.count(s, user.id)
        threshold = conversations.confirm_above(s, user.id)
        remaining = budgets.estimate_remaining(s, caller, utc_now())
except SwitchboardError as exc:
    st.error(exc.message)
    st.stop()

if conv is not None and ss.get(state.CHAT_LOADED) != conv.id:
    # Reopening a conversation restores its task, model and settings.
    ss[state.CHAT_TASK] = conv.task if conv.task in tasks else tasks[0]
    ss[state.CHAT_FORCE_MODEL] = conv.model  # the picker writes it so the browser shows it
    ss[state.CHAT_TEMPERATURE] = conv.settings.get("temperature")
    ss[state.CHAT_MAX_TOKENS] = conv.settings.get("max_tokens")
    ss[state.CHAT_SYSTEM_PROMPT] = conv.settings.get("system_prompt") or ""
    ss.pop(state.CHAT_TITLE, None)
ss[state.CHAT_LOADED] = conv.id if conv else None

session_totals: Totals = ss.setdefault(state.CHAT_SESSION_TOTALS, Totals())

with st.sidebar:
    st.subheader("Conversations")
    chat_panels.conversation_list(
        listing,
        total=conversation_count,
        open_id=open_id,
        on_open=actions.open_conversation,
        on_new=actions.new_chat,
    )
    st.divider()
    if conv is not None:
        st.markdown("**This conversation**")
        st.caption(chat_panels.totals_text(conversations.totals(items)))
    st.markdown("**This session**")
    st.caption(chat_panels.totals_text(session_totals))

st.title("Chat")
notice = ss.pop(state.CHAT_NOTICE, None)
if notice:
    if notice.startswith("error:"):
        st.error(notice.removeprefix("error:"))
    else:
        st.success(notice)

choice = task_and_model(svc, caller, tasks, active_profile())
settings = chat_controls.settings_expander(svc.sessions, user.id, threshold)


def plan_for(prompt: str) -> TurnPlan:
    # Keeping the route's own first choice sends "auto", so the route applies as configured.
    return TurnPlan(
        caller=caller,
        prompt=prompt,
        history=tuple(items),
        model=choice.model,
        picked_model=choice.picked,
        task=choice.task,
        settings=settings,
        profile=active_profile(),
        conversation_id=conv.id if conv else None,
    )


if conv is not None:
    chat_controls.conversation_header(conv, items, svc.sessions, user)
elif not items:
    st.caption(
        "Ask anything. Answers stream in; each one shows the model that answered, "
        "its tokens, cost and speed."
    )

for item in items:
    chat_panels.message(item)

chat_controls.failed_notice()
chat_controls.pending_notice(threshold)

try:
    next_cost = svc.runtime.gateway.estimate(plan_for("…").request("estimate", None))
    so_far = turns.tokens_so_far(items, settings["system_prompt"])
    st.caption(view.estimate_caption(next_cost, remaining, so_far))
except SwitchboardError as exc:
    st.caption(f"No estimate: {exc.message}")

typed = st.chat_input("Message the model", key=state.CHAT_INPUT)
resend = ss.pop(state.CHAT_RESEND, None)
if typed:
    send(svc, plan_for(typed), False, threshold)
elif resend:
    send(svc, plan_for(resend["prompt"]), resend["confirmed"], threshold)
