"""AppTest of the chat page against fake providers reached through the app's own gateway."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from streamlit.testing.v1 import AppTest

from core.chat import conversations
from core.clock import utc_now
from core.money import budgets, ratelimits
from core.store.tables import ChatMessage, Conversation, RequestRow
from tests.conftest import add_user
from tests.fakes import Reply, Status
from tests.support.pages import AppFakes, org_route, signed_in, texts
from ui import state

PAGE = "app_pages/chat.py"
GPT = "openai/gpt-4o"
MINI = "openai/gpt-4o-mini"
HAIKU = "anthropic/claude-3-haiku-20240307"


def ledger_row(
    sessions: sessionmaker[Session], request_id: str, timeout_s: float = 10
) -> RequestRow:
    """The ledger is written by a background writer; wait for the row to land."""
    deadline = time.monotonic() + timeout_s
    while True:
        with sessions() as s:
            row = s.get(RequestRow, request_id)
            if row is not None:
                s.expunge(row)
                return row
        if time.monotonic() > deadline:
            pytest.fail(f"no ledger row for {request_id} after {timeout_s} s")
        time.sleep(0.05)


def stored(sessions: sessionmaker[Session]) -> list[tuple[str, list[ChatMessage]]]:
    with sessions() as s:
        convs = s.scalars(select(Conversation).order_by(Conversation.created_at)).all()
        out = []
        for c in convs:
            msgs = s.scalars(
                select(ChatMessage)
                .where(ChatMessage.conversation_id == c.id)
                .order_by(ChatMessage.seq)
            ).all()
            for m in msgs:
                s.expunge(m)
            out.append((c.title, list(msgs)))
        return out


def send(at: AppTest, text: str) -> AppTest:
    at.chat_input(key=state.CHAT_INPUT).set_value(text).run()
    assert not at.exception, at.exception
    return at


def button(at: AppTest, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r}; have {[b.label for b in at.button]}"
    return found[0]


def test_send_streams_the_answer_and_shows_its_badge(
    sessions: sessionmaker[Session], app_fakes: AppFakes
) -> None:
    add_user(sessions, "alice")
    app_fakes.openai.configure("gpt-4o-mini", tokens=["Hello ", "**team**", ", ready."])
    at = signed_in("alice", PAGE)
    assert not at.exception
    assert "No route is set" in texts(at)  # no route: a catalog default, and it says so
    assert at.selectbox(key=state.CHAT_MODEL).value == MINI

    send(at, "Say hello to the team")

    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    answer = at.chat_message[1]
    assert answer.markdown[0].value == "Hello **team**, ready."
    badge = answer.caption[0].value
    assert badge.startswith("gpt-4o-mini · ") and " in / " in badge and " out · $" in badge
    assert "first token" in badge and " ms" in badge
    [(title, msgs)] = stored(sessions)
    assert title == "Say hello to the team"
    assert [(m.role, m.status) for m in msgs] == [("user", "complete"), ("assistant", "complete")]
    row = ledger_row(sessions, msgs[1].request_id or "")
    assert (row.source, row.served_model, row.status) == ("chat", MINI, "success")
    with sessions() as s:
        conv_id = s.scalar(select(Conversation.id))
    assert row.conversation_id == conv_id
    # The sidebar totals count the answer.
    assert f"{row.prompt_tokens + row.completion_tokens} tokens" in texts(at)


def test_second_message_sends_the_whole_history(
    sessions: sessionmaker[Session], app_fakes: AppFakes
) -> None:
    add_user(sessions, "alice")
    at = signed_in("alice", PAGE)
    send(at, "First question")
    send(at, "Second question")
    assert [m.name for m in at.chat_message] == ["user", "assistant"] * 2
    last = app_fakes.openai.requests("gpt-4o-mini")[-1].body["messages"]
    assert [m["role"] for m in last] == ["user", "assistant", "user"]
    assert last[0]["content"] == "First question" and last[2]["content"] == "Second question"
    [(_, msgs)] = stored(sessions)
    assert len(msgs) == 4


def test_fallback_answer_carries_a_notice_and_its_attempts(
    sessions: sessionmaker[Session], app_fakes: AppFakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Judge the breaker on 3 calls, so one failed message (3 calls) opens it.
    monkeypatch.setenv("SWITCHBOARD_BREAKER_MIN_CALLS", "3")
    add_user(sessions, "alice")
    org_route(sessions, [GPT, HAIKU])
    app_fakes.openai.script("gpt-4o", *[Status(429, retry_after=0)] * 3)
    at = signed_in("alice", PAGE)
    assert at.selectbox(key=state.CHAT_MODEL).value == GPT  # the route's first model
    assert "falls back to claude-3-haiku-20240307" in texts(at)
    send(at, "Hi there, team")
    send(at, "And a follow-up")  # 3 of 3 calls failed: gpt-4o's breaker is open, skipped

    answers = [m for m in at.chat_message if m.name == "assistant"]
    first = answers[0]
    assert first.info[0].value == (
        "gpt-4o failed: rate limited; answered by claude-3-haiku-20240307."
    )
    assert first.caption[0].value.startswith("claude-3-haiku-20240307 · ")
    attempts = first.expander[0]
    assert attempts.label == "Attempts (4)"
    assert "answered" in attempts.markdown[0].value and "rate limited" in attempts.markdown[0].value
    assert answers[1].info[0].value == (
        "gpt-4o failed: skipped, circuit open: nearly all its recent calls failed; "
        "answered by claude-3-haiku-20240307."
    )
    # The fallback saw the whole conversation.
    sent = app_fakes.anthropic.requests()[0].body["messages"]
    assert "Hi there, team" in str(sent[-1]["content"])
    [(_, msgs)] = stored(sessions)
    assert ledger_row(sessions, msgs[1].request_id or "").status == "success-after-fallback"


def test_budget_refusal_says_what_to_do_and_keeps_the_message(
    sessions: sessionmaker[Session], app_fakes: AppFakes
) -> None:
    alice = add_user(sessions, "alice")
    with sessions.begin() as s:
        budgets.set_budget(s, "user", str(alice.id), 1, True, "test", utc_now())
    at = signed_in("alice", PAGE)
    assert "$0.000001 left in your budget" in texts(at)
    send(at, "Please write a long essay")

    assert at.error[0].value.startswith("Budget refused. This request could cost up to")
    assert "Ask an admin to raise it" in at.error[0].value
    assert at.text_area(key=state.CHAT_DRAFT).value == "Please write a long essay"
    assert stored(sessions) == []  # nothing half-saved
    assert app_fakes.openai.count() == 0

    # Raise the budget, then send the kept message again.
    with sessions.begin() as s:
        budgets.set_budget(s, "user", str(alice.id), 10_000_000, True, "test", utc_now())
    time.sleep(2.1)  # the gateway's per-caller policy cache holds for 2 s
    button(at, "Send again").click().run()
    assert not at.exception
    assert not at.error
    [(title, msgs)] = stored(sessions)
    assert title == "Please write a long essay" and msgs[1].status == "complete"


def test_rate_limit_says_how_long_to_wait(
    sessions: sessionmaker[Session], app_fakes: AppFakes
) -> None:
    alice = add_user(sessions, "alice")
    with sessions.begin() as s:
        ratelimits.set_rate_limit(s, alice.id, 1, None, "test", utc_now())
    at = signed_in("alice", PAGE)
    send(at, "one")
    send(at, "two")
    message = at.error[0].value
    assert message.startswith("Rate limited.") and "Try again in" in message
    assert "then press Send again" in message
    assert at.text_area(key=state.CHAT_DRAFT).value == "two"
    button(at, "Discard").click().run()
    assert not at.error


def test_no_key_tells_the_user_to_add_one(
    sessions: sessionmaker[Session], app_fakes: AppFakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_user(sessions, "alice")
    monkeypatch.delenv("OPENAI_API_KEY")
    at = signed_in("alice", PAGE)
    # Without an OpenAI key the picker starts at a model you can use, and hides OpenAI's.
    assert at.selectbox(key=state.CHAT_MODEL).value == HAIKU
    assert MINI not in at.selectbox(key=state.CHAT_MODEL).options
    at.checkbox(key=state.CHAT_SHOW_NO_KEY).check().run()
    at.selectbox(key=state.CHAT_MODEL).set_value(MINI).run()
    assert "You have no key for this model's provider" in at.warning[0].value
    send(at, "hello")
    assert at.error[0].value.startswith("No API key. No API key for openai.")
    assert "Providers & keys" in at.error[0].value


def test_all_models_failed_lists_attempts(
    sessions: sessionmaker[Session], app_fakes: AppFakes
) -> None:
    add_user(sessions, "alice")
    app_fakes.openai.script("gpt-4o-mini", *[Status(400)] * 2)
    at = signed_in("alice", PAGE)
    send(at, "hello")
    assert at.error[0].value.startswith("No model answered.")
    assert any("gpt-4o-mini" in c.value for c in at.caption)
    assert at.text_area(key=state.CHAT_DRAFT).value == "hello"


def test_a_cut_answer_is_kept_and_marked_incomplete(
    sessions: sessionmaker[Session], app_fakes: AppFakes
) -> None:
    add_user(sessions, "alice")
    # Spaced tokens: litellm may drop text that arrives in the same instant as a cut.
    app_fakes.openai.script(
        "gpt-4o-mini",
        Reply(tokens=["Part ", "one ", "two ", "three"], cut_after=3, token_delay=0.05),
    )
    at = signed_in("alice", PAGE)
    send(at, "hello")
    answer = at.chat_message[1]
    assert answer.markdown[0].value.startswith("Part one")
    assert answer.warning[0].value.startswith("Incomplete: The answer was cut off")
    assert answer.caption[0].value.startswith("gpt-4o-mini · ")
    [(_, msgs)] = stored(sessions)
    assert msgs[1].status == "incomplete" and msgs[1].content.startswith("Part one")
    assert "three" not in msgs[1].content


def test_expensive_message_needs_confirmation(
    sessions: sessionmaker[Session], app_fakes: AppFakes
) -> None:
    alice = add_user(sessions, "alice")
    with sessions.begin() as s:
        conversations.set_confirm_above(s, alice.id, 0, utc_now())
    at = signed_in("alice", PAGE)
    send(at, "An expensive question")
    assert "above your confirmation threshold of $0.00" in at.warning[0].value
    assert app_fakes.openai.count() == 0 and stored(sessions) == []
    button(at, "Send anyway").click().run()
    assert not at.exception
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    assert app_fakes.openai.count() == 1


def test_cancelled_confirmation_keeps_the_text(
    sessions: sessionmaker[Session], app_fakes: AppFakes
) -> None:
    alice = add_user(sessions, "alice")
    with sessions.begin() as s:
        conversations.set_confirm_above(s, alice.id, 0, utc_now())
    at = signed_in("alice", PAGE)
    send(at, "Maybe not")
    button(at, "Cancel").click().run()
    assert at.text_area(key=state.CHAT_DRAFT).value == "Maybe not"
    assert app_fakes.openai.count() == 0


def test_threshold_setting_is_saved_per_user(
    sessions: sessionmaker[Session], app_fakes: AppFakes
) -> None:
    alice = add_user(sessions, "alice")
    at = signed_in("alice", PAGE)
    assert at.number_input(key=state.CHAT_CONFIRM_ABOVE).value == 0.5  # the default
    at.number_input(key=state.CHAT_CONFIRM_ABOVE).set_value(1.25).run()
    with sessions() as s:  # not saved until asked to
        assert conversations.confirm_above(s, alice.id) == 500_000
    button(at, "Save threshold").click().run()
    assert "may cost over $1.25" in at.success[0].value
    with sessions() as s:
        assert conversations.confirm_above(s, alice.id) == 1_250_000


def test_conversation_persists_and_restores_model_and_settings(
    sessions: sessionmaker[Session], app_fakes: AppFakes
) -> None:
    add_user(sessions, "alice")
    at = signed_in("alice", PAGE)
    at.selectbox(key=state.CHAT_MODEL).set_value(HAIKU).run()
    at.text_area(key=state.CHAT_SYSTEM_PROMPT).set_value("Answer in French.").run()
    send(at, "Remember me please")
    assert app_fakes.anthropic.requests()[0].body["system"]

    fresh = signed_in("alice", PAGE)  # a new browser session
    assert fresh.selectbox(key=state.CHAT_MODEL).value == MINI  # nothing open yet
    assert not fresh.chat_message
    [conv] = [b for b in fresh.button if b.label == "Remember me please"]
    conv.click().run()
    assert not fresh.exception
    assert [m.name for m in fresh.chat_message] == ["user", "assistant"]
    assert fresh.chat_message[1].caption[0].value.startswith("claude-3-haiku-20240307 · ")
    assert fresh.selectbox(key=state.CHAT_MODEL).value == HAIKU
    assert fresh.text_area(key=state.CHAT_SYSTEM_PROMPT).value == "Answer in French."
    # Back to a new chat: the list keeps it.
    button(fresh, "New chat").click().run()
    assert not fresh.chat_message
    assert any(b.label == "Remember me please" for b in fresh.button)


def test_search_finds_conversations_by_message_text(
    sessions: sessionmaker[Session], app_fakes: AppFakes
) -> None:
    add_user(sessions, "alice")
    at = signed_in("alice", PAGE)
    send(at, "Plan the offsite")
    button(at, "New chat").click().run()
    send(at, "Review the budget")
    at.text_input(key=state.CHAT_SEARCH).set_value("offsite").run()
    labels = [b.label for b in at.button]
    assert "Plan the offsite" in labels and "Review the budget" not in labels
    at.text_input(key=state.CHAT_SEARCH).set_value("nothing like this").run()
    assert "No conversation matches." in texts(at)


def test_rename_and_delete_with_confirmation(
    sessions: sessionmaker[Session], app_fakes: AppFakes
) -> None:
    add_user(sessions, "alice")
    at = signed_in("alice", PAGE)
    send(at, "Original title")

    at.text_input(key=state.CHAT_TITLE).set_value("   ").run()
    button(at, "Rename").click().run()
    assert at.error[0].value == "A title cannot be empty; type a few words."
    assert stored(sessions)[0][0] == "Original title"

    at.text_input(key=state.CHAT_TITLE).set_value("Better title").run()
    button(at, "Rename").click().run()
    assert stored(sessions)[0][0] == "Better title"
    assert at.subheader[-1].value == "Better title" or "Better title" in texts(at)

    button(at, "Delete…").click().run()
    assert "cannot be undone" in at.warning[0].value
    button(at, "Cancel").click().run()
    assert len(stored(sessions)) == 1 and not at.warning

    button(at, "Delete…").click().run()
    button(at, "Yes, delete").click().run()
    assert not at.exception
    assert stored(sessions) == []
    assert at.success[0].value == "Conversation deleted."
    assert not at.chat_message


def test_export_offers_markdown_and_json(
    sessions: sessionmaker[Session], app_fakes: AppFakes
) -> None:
    add_user(sessions, "alice")
    at = signed_in("alice", PAGE)
    send(at, "Export me")
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Export as Markdown", "Export as JSON"]


def test_members_cannot_open_another_users_conversation(
    sessions: sessionmaker[Session], app_fakes: AppFakes
) -> None:
    add_user(sessions, "alice")
    add_user(sessions, "bob")
    at = signed_in("alice", PAGE)
    send(at, "Alice's secret plan")
    with sessions() as s:
        alice_conv = s.scalar(select(Conversation.id))

    bob = signed_in("bob", PAGE)
    bob.session_state[state.CHAT_CONVERSATION] = alice_conv
    bob.run()
    assert not bob.exception
    assert not bob.chat_message
    assert "Alice's secret plan" not in texts(bob)
    assert all(b.label != "Alice's secret plan" for b in bob.button)


def test_task_route_picks_the_model(sessions: sessionmaker[Session], app_fakes: AppFakes) -> None:
    add_user(sessions, "alice")
    org_route(sessions, [MINI])
    org_route(sessions, [HAIKU], task="code")
    at = signed_in("alice", PAGE)
    assert at.selectbox(key=state.CHAT_MODEL).value == MINI
    at.selectbox(key=state.CHAT_TASK).set_value("code").run()
    assert at.selectbox(key=state.CHAT_MODEL).value == HAIKU
    send(at, "Write a function")
    [(_, msgs)] = stored(sessions)
    row = ledger_row(sessions, msgs[1].request_id or "")
    assert (row.task, row.served_model, row.requested_model) == ("code", HAIKU, "auto")
