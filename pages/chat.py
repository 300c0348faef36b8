"""Chat: streaming multi-turn chat through the gateway, with model choice, costs and history."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import streamlit as st

from core.accounts import auth
from core.chat import conversations, export, turns, view
from core.chat.conversations import ConversationInfo, MessageInfo, Totals
from core.chat.turns import ChatTurn, TurnPlan
from core.clock import utc_now
from core.errors import NotFound, SwitchboardError
from core.money import budgets
from core.request import micros_to_usd
from ui import chat_panels, state
from ui.model_picker import model_picker
from ui.resources import services
from ui.session import active_profile, current_user

SIDEBAR_LIMIT = 30
ss = st.session_state
user = current_user()
svc = services()


# --- callbacks (run before the script, so the run draws the new state) ----------------


def _forget_turn_state() -> None:
    for key in (state.CHAT_FAILED, state.CHAT_PENDING, state.CHAT_CONFIRM_DELETE):
        ss.pop(key, None)


def open_conversation(conversation_id: str) -> None:
    ss[state.CHAT_CONVERSATION] = conversation_id
    _forget_turn_state()


def new_chat() -> None:
    ss[state.CHAT_CONVERSATION] = None
    ss[state.CHAT_LOADED] = None
    ss.pop(state.CHAT_TITLE, None)
    _forget_turn_state()


def task_changed() -> None:
    ss.pop(state.CHAT_MODEL, None)  # the new task's route picks the model


def save_threshold() -> None:
    dollars = ss.get(state.CHAT_CONFIRM_ABOVE)
    micros = int(Decimal(str(dollars or 0)) * 1_000_000)
    with svc.sessions.begin() as s:
        conversations.set_confirm_above(s, user.id, micros, utc_now())
    ss[state.CHAT_NOTICE] = (
        f"You will be asked before messages that may cost over {budgets.usd(micros)}."
    )


def send_again() -> None:
    text = str(ss.get(state.CHAT_DRAFT) or "")
    ss[state.CHAT_RESEND] = {"prompt": text, "confirmed": False}
    ss.pop(state.CHAT_FAILED, None)


def discard_failed() -> None:
    ss.pop(state.CHAT_FAILED, None)


def confirm_pending() -> None:
    pending = ss.pop(state.CHAT_PENDING, None)
    if pending:
        ss[state.CHAT_RESEND] = {"prompt": pending["prompt"], "confirmed": True}


def cancel_pending() -> None:
    pending = ss.pop(state.CHAT_PENDING, None)
    if pending:  # back into the editable draft, so nothing typed is lost
        ss[state.CHAT_DRAFT] = pending["prompt"]
        ss[state.CHAT_FAILED] = {
            "prompt": pending["prompt"],
            "message": "Not sent. Edit the message or send it again.",
        }


def rename(conversation_id: str) -> None:
    try:
        with svc.sessions.begin() as s:
            conversations.rename(
                s, user.id, conversation_id, str(ss.get(state.CHAT_TITLE, "")), utc_now()
            )
        ss[state.CHAT_NOTICE] = "Renamed."
    except SwitchboardError as exc:
        ss[state.CHAT_NOTICE] = f"error:{exc.message}"


def ask_delete(conversation_id: str) -> None:
    ss[state.CHAT_CONFIRM_DELETE] = conversation_id


def delete_confirmed(conversation_id: str) -> None:
    try:
        with svc.sessions.begin() as s:
            conversations.delete_conversation(
                s, user.id, conversation_id, actor=user.username, now=utc_now()
            )
        ss[state.CHAT_NOTICE] = "Conversation deleted."
    except SwitchboardError as exc:
        ss[state.CHAT_NOTICE] = f"error:{exc.message}"
    ss.pop(state.CHAT_CONFIRM_DELETE, None)
    new_chat()


# --- load -------------------------------------------------------------------------------

# A Stop click (any click) starts this run while the interrupted one is still unwinding
# on its own thread; wait until it has saved the partial answer, then read.
inflight = ss.pop(state.CHAT_INFLIGHT, None)
if inflight is not None:
    inflight.wait(timeout=10)

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
    ss[state.CHAT_MODEL] = conv.model
    ss[state.CHAT_TEMPERATURE] = conv.settings.get("temperature")
    ss[state.CHAT_MAX_TOKENS] = conv.settings.get("max_tokens")
    ss[state.CHAT_SYSTEM_PROMPT] = conv.settings.get("system_prompt") or ""
    ss.pop(state.CHAT_TITLE, None)
ss[state.CHAT_LOADED] = conv.id if conv else None

session_totals: Totals = ss.setdefault(state.CHAT_SESSION_TOTALS, Totals())

# --- sidebar -----------------------------------------------------------------------------

with st.sidebar:
    st.subheader("Conversations")
    chat_panels.conversation_list(
        listing,
        total=conversation_count,
        open_id=open_id,
        on_open=open_conversation,
        on_new=new_chat,
    )
    st.divider()
    if conv is not None:
        st.markdown("**This conversation**")
        st.caption(chat_panels.totals_text(conversations.totals(items)))
    st.markdown("**This session**")
    st.caption(chat_panels.totals_text(session_totals))

# --- header: task, model, settings -----------------------------------------------------

st.title("Chat")
notice = ss.pop(state.CHAT_NOTICE, None)
if notice:
    if notice.startswith("error:"):
        st.error(notice.removeprefix("error:"))
    else:
        st.success(notice)

left, right = st.columns([1, 3])
task = left.selectbox(
    "Task",
    tasks,
    key=state.CHAT_TASK,
    on_change=task_changed,
    help="Each task can have its own route (chain of models).",
)
with svc.sessions() as s:
    default = turns.default_model(s, caller, task, svc.catalog, active_profile())
with right:
    picked = model_picker("Model", svc.catalog, key=state.CHAT_MODEL, default=default.model)
if default.note:
    st.caption(default.note)
elif picked == default.model and len(default.chain) > 1:
    st.caption(
        "Your route for this task falls back to "
        + ", ".join(view.short_model(m) for m in default.chain[1:])
        + "."
    )

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
        value=float(micros_to_usd(threshold)),
    )
    t2.button("Save threshold", on_click=save_threshold, key="sb_chat_save_threshold")

settings: dict[str, Any] = {
    "temperature": temperature,
    "max_tokens": int(max_tokens) if max_tokens else None,
    "system_prompt": system_prompt or "",
}


def plan_for(prompt: str) -> TurnPlan:
    # Keeping the route's own first choice sends "auto", so the route applies as configured.
    model = "auto" if picked == default.model and default.note is None else picked
    return TurnPlan(
        caller=caller,
        prompt=prompt,
        history=tuple(items),
        model=model,
        picked_model=picked,
        task=task,
        settings=settings,
        profile=active_profile(),
        conversation_id=conv.id if conv else None,
    )


# --- the conversation --------------------------------------------------------------------

if conv is not None:
    head, manage = st.columns([4, 1], vertical_alignment="center")
    head.subheader(conv.title)
    with manage.popover("Manage", icon=":material/more_horiz:", width="stretch"):
        st.text_input("Title", value=conv.title, key=state.CHAT_TITLE, max_chars=200)
        st.button("Rename", on_click=rename, args=(conv.id,), key="sb_chat_rename")
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
            on_click=ask_delete,
            args=(conv.id,),
            key="sb_chat_delete",
            icon=":material/delete:",
        )
    if ss.get(state.CHAT_CONFIRM_DELETE) == conv.id:
        st.warning(
            f"Delete “{conv.title}” and its {len(items)} messages? This cannot be "
            "undone. The usage ledger keeps its cost records."
        )
        y, n = st.columns(2)
        y.button(
            "Yes, delete",
            type="primary",
            on_click=delete_confirmed,
            args=(conv.id,),
            key="sb_chat_delete_yes",
        )
        n.button(
            "Cancel",
            on_click=ss.pop,
            args=(state.CHAT_CONFIRM_DELETE, None),
            key="sb_chat_delete_no",
        )
elif not items:
    st.caption(
        "Ask anything. Answers stream in; each one shows the model that answered, "
        "its tokens, cost and speed."
    )

for item in items:
    chat_panels.message(item)

failed = ss.get(state.CHAT_FAILED)
if failed:
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
        on_click=send_again,
        key="sb_chat_send_again",
        icon=":material/send:",
    )
    b.button("Discard", on_click=discard_failed, key="sb_chat_discard")

pending = ss.get(state.CHAT_PENDING)
if pending:
    st.warning(
        f"This message may cost up to {budgets.usd(pending['high'])}, above your "
        f"confirmation threshold of {budgets.usd(threshold)}. Send it anyway?",
        icon=":material/payments:",
    )
    st.markdown(f"> {pending['prompt'][:300]}")
    a, b = st.columns(2)
    a.button("Send anyway", type="primary", on_click=confirm_pending, key="sb_chat_confirm")
    b.button("Cancel", on_click=cancel_pending, key="sb_chat_cancel")

try:
    next_cost = svc.runtime.gateway.estimate(plan_for("…").request("estimate", None))
    st.caption(view.estimate_caption(next_cost, remaining))
except SwitchboardError as exc:
    st.caption(f"No estimate: {exc.message}")

typed = st.chat_input("Message the model", key=state.CHAT_INPUT)
resend = ss.pop(state.CHAT_RESEND, None)
prompt, confirmed = (
    (typed, False)
    if typed
    else ((resend["prompt"], resend["confirmed"]) if resend else (None, False))
)


def fail(prompt: str, error: SwitchboardError, lines: list[str] | None = None) -> None:
    ss[state.CHAT_FAILED] = {
        "prompt": prompt,
        "message": view.error_advice(error),
        "attempts": lines or [],
    }
    ss[state.CHAT_DRAFT] = prompt
    st.rerun()


def send(prompt: str, confirmed: bool) -> None:
    if not prompt.strip():
        st.error("Type a message first.")
        return
    ss.pop(state.CHAT_FAILED, None)
    ss.pop(state.CHAT_DRAFT, None)
    plan = plan_for(prompt)
    try:
        cost = svc.runtime.gateway.estimate(plan.request("estimate", None))
    except SwitchboardError as exc:
        fail(prompt, exc)
        return
    if not confirmed and view.needs_confirmation(cost, threshold):
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
        ss[state.CHAT_SESSION_TOTALS] = session_totals.plus(
            turn.summary.usage.prompt_tokens,
            turn.summary.usage.completion_tokens,
            turn.summary.cost_micros,
        )
    st.rerun()  # draw the stored answer with its badge, and the new totals


if prompt is not None:
    send(prompt, confirmed)
