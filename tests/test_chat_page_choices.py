"""AppTest of the chat page's model choice and Stop, as a member meets them (issue 21, part 3).

Stop itself is a click while the answer streams, which AppTest cannot make mid-run; the
stops here go through the same ChatTurn the page uses, against the app's own gateway
(``ui.resources.services()`` is process-wide, so AppTest and the test share it). The
real button is clicked in tests/browser/test_chat_fixes_browser.py.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from streamlit.testing.v1 import AppTest

from core.accounts import auth
from core.chat import conversations
from core.chat.turns import ChatTurn, TurnPlan
from core.clock import utc_now
from core.money.catalog import load_catalog
from core.settings import endpoints
from core.store.tables import Conversation
from tests.conftest import add_user
from tests.fakes import Reply
from tests.support.pages import AppFakes, org_route, signed_in, texts
from tests.test_chat_page import GPT, HAIKU, MINI, PAGE, button, ledger_row, send
from ui import state
from ui.resources import services

ENDPOINT_MODEL = "lab/llama3"
FIRST_RUN_S = 90  # a process's first run imports litellm; slow on a loaded machine


def picker(at: AppTest):  # type: ignore[no-untyped-def]
    return at.selectbox(key=state.CHAT_MODEL)


def test_changing_task_switches_the_picker_to_that_tasks_route(
    sessions: sessionmaker[Session], app_fakes: AppFakes
) -> None:
    add_user(sessions, "mia", "member")
    org_route(sessions, [MINI])
    org_route(sessions, [HAIKU, MINI], task="code")
    at = signed_in("mia", PAGE, timeout=FIRST_RUN_S)
    picker(at).set_value(GPT).run()  # a model picked by hand for the chat task
    at.selectbox(key=state.CHAT_TASK).set_value("code").run()
    assert picker(at).value == HAIKU  # not the hand-picked model: the code route's first
    assert "Your route for this task falls back to gpt-4o-mini." in texts(at)
    send(at, "Write a function")
    [conv] = conversations_of(sessions)
    row = ledger_row(sessions, last_answer(sessions, conv).request_id or "")
    # Sent as "auto", so the code route (and its fallback) applied.
    assert (row.task, row.requested_model, row.served_model) == ("code", "auto", HAIKU)
    assert row.chain == [HAIKU, MINI]
    at.selectbox(key=state.CHAT_TASK).set_value("chat").run()
    assert picker(at).value == MINI


def test_endpoint_models_are_offered_and_usable_models_come_first(
    sessions: sessionmaker[Session], app_fakes: AppFakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_user(sessions, "mia", "member")
    monkeypatch.delenv("ANTHROPIC_API_KEY")  # mia can use OpenAI (and the endpoint) only
    with sessions.begin() as s:
        endpoints.add_endpoint(
            s,
            name="lab",
            kind="openai-compatible",
            api_base=app_fakes.openai.base_url,
            models=("llama3",),
            actor="test",
            now=utc_now(),
            builtin_providers=load_catalog().providers(),
        )
    services().runtime.gateway.refresh()
    app_fakes.openai.configure("llama3", tokens=["From ", "the ", "lab."])
    at = signed_in("mia", PAGE, timeout=FIRST_RUN_S)
    options = picker(at).options
    assert any("lab/llama3 · admin endpoint" in o for o in options)
    assert not any("anthropic ·" in o for o in options)  # no key: hidden
    assert "more need a key you don't have (" in texts(at)
    # Shown on request, after every usable model and marked "no key".
    at.checkbox(key=state.CHAT_SHOW_NO_KEY).check().run()
    options = picker(at).options
    no_key = [i for i, o in enumerate(options) if o.endswith(" · no key")]
    usable = [i for i, o in enumerate(options) if not o.endswith(" · no key")]
    assert no_key and max(usable) < min(no_key)
    assert any(o.startswith("anthropic ·") for o in (options[i] for i in no_key))
    assert not any(options[i].startswith("anthropic ·") for i in usable)

    picker(at).set_value(ENDPOINT_MODEL).run()
    send(at, "Hello lab")
    answer = at.chat_message[1]
    assert answer.markdown[0].value == "From the lab."
    assert answer.caption[0].value.startswith("llama3 · ")
    [conv] = conversations_of(sessions)
    row = ledger_row(sessions, last_answer(sessions, conv).request_id or "")
    assert (row.served_model, row.provider) == (ENDPOINT_MODEL, "lab")


def test_no_prompt_tokens_so_far_before_anything_is_typed(
    sessions: sessionmaker[Session], app_fakes: AppFakes
) -> None:
    add_user(sessions, "mia", "member")
    at = signed_in("mia", PAGE, timeout=FIRST_RUN_S)
    [estimate] = [c.value for c in at.caption if c.value.startswith("Next message:")]
    assert estimate.startswith("Next message: about $") and "tokens so far" not in estimate
    send(at, "First question")
    [estimate] = [c.value for c in at.caption if c.value.startswith("Next message:")]
    assert "prompt tokens so far" in estimate


def test_three_stops_leave_the_key_working_and_the_pickers_model_answers(
    sessions: sessionmaker[Session], app_fakes: AppFakes
) -> None:
    mia = add_user(sessions, "mia", "member")
    org_route(sessions, [GPT, HAIKU])
    svc = services()
    svc.runtime.gateway.refresh()
    app_fakes.openai.configure("gpt-4o", tokens=[f"t{i} " for i in range(40)])
    app_fakes.openai.script("gpt-4o", *[Reply(token_delay=0.05)] * 3)
    with sessions() as s:
        caller = auth.caller_for(s, mia.id)
    conversation_id = None
    for i in range(3):
        with sessions() as s:
            history = (
                tuple(conversations.messages(s, mia.id, conversation_id)) if conversation_id else ()
            )
        plan = TurnPlan(
            caller=caller,
            prompt=f"Tell me a long story {i}",
            history=history,
            model="auto",
            picked_model=GPT,
            task="chat",
            settings={},
            conversation_id=conversation_id,
        )
        turn = ChatTurn(svc.sessions, svc.gateway, plan)
        assert turn.start() is None
        texts_ = turn.texts()
        next(texts_), next(texts_)
        texts_.close()  # what the page's Stop does to st.write_stream's generator
        conversation_id = turn.conversation_id

    # The key is not paused for anyone: the Providers & keys page says OpenAI is working.
    at = signed_in("mia", "app_pages/providers.py", timeout=FIRST_RUN_S)
    [openai_row] = [
        r for r in at.dataframe[0].value.to_dict("records") if r["Provider"] == "OpenAI"
    ]
    assert openai_row["Circuit"] == "working"

    at.switch_page(PAGE).run()
    button(at, "Tell me a long story 0").click().run()
    assert picker(at).value == GPT
    stopped = [m for m in at.chat_message if m.name == "assistant"]
    assert len(stopped) == 3
    for answer in stopped:  # each keeps its badge: model, tokens, cost
        captions = [c.value for c in answer.caption]
        assert captions[0].startswith(":material/stop_circle: Stopped.")
        assert captions[1].startswith("gpt-4o · ") and " out · $" in captions[1]
    sidebar = " ".join(c.value for c in at.sidebar.caption)
    assert "unpriced" not in sidebar and " · $" in sidebar  # the totals stay priced

    send(at, "Now answer in full")
    answer = [m for m in at.chat_message if m.name == "assistant"][-1]
    assert answer.caption[0].value.startswith("gpt-4o · ")
    assert not answer.info  # no fallback, no other model
    assert app_fakes.anthropic.count() == 0


def conversations_of(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as s:
        return list(s.scalars(select(Conversation.id)))


def last_answer(sessions: sessionmaker[Session], conversation_id: str):  # type: ignore[no-untyped-def]
    with sessions() as s:
        conv = s.get(Conversation, conversation_id)
        assert conv is not None
        return conversations.messages(s, conv.user_id, conversation_id)[-1]
