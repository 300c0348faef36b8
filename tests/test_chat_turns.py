"""One chat turn against a real gateway and fake providers: saving, stopping, cuts, refusals."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from core.accounts import auth
from core.chat import conversations, turns
from core.chat.turns import ChatTurn, TurnPlan
from core.errors import BudgetExceeded, InvalidInput
from core.gateway.sync_bridge import SyncGateway
from core.money.catalog import load_catalog
from core.store.tables import ChatMessage, RequestRow
from tests.fakes import Reply
from tests.gateway_support import GPT, HAIKU, MINI, Rig


@pytest.fixture
def sync(rig: Rig) -> Iterator[SyncGateway]:
    gateway = SyncGateway(rig.gateway, thread_name="chat-turn-test")
    yield gateway
    gateway.stop()  # the rig closes the gateway itself


def plan(rig: Rig, prompt: str = "Hello", **kw: object) -> TurnPlan:
    defaults: dict[str, object] = dict(
        caller=rig.caller,
        prompt=prompt,
        history=(),
        model=MINI,
        picked_model=MINI,
        task="chat",
        settings={},
    )
    defaults.update(kw)
    return TurnPlan(**defaults)  # type: ignore[arg-type]


def messages(rig: Rig) -> list[ChatMessage]:
    with rig.sessions() as s:
        rows = list(s.scalars(select(ChatMessage).order_by(ChatMessage.seq)))
        for r in rows:
            s.expunge(r)
        return rows


def ledger(rig: Rig, request_id: str) -> RequestRow:
    assert rig.gateway.flush(10)
    with rig.sessions() as s:
        row = s.get(RequestRow, request_id)
        assert row is not None
        return row


def test_a_full_turn_saves_both_messages_tied_to_the_ledger(rig: Rig, sync: SyncGateway) -> None:
    rig.openai.configure("gpt-4o-mini", tokens=["Hi ", "there"])
    turn = ChatTurn(rig.sessions, sync, plan(rig, settings={"temperature": 0.2}))
    assert turn.start() is None
    assert turn.run_to_end() == "Hi there"
    user, answer = messages(rig)
    assert (user.role, user.content) == ("user", "Hello")
    assert (answer.status, answer.content, answer.model) == ("complete", "Hi there", MINI)
    assert answer.details["completion_tokens"] > 0 and answer.details["cost_micros"] is not None
    row = ledger(rig, answer.request_id or "")
    assert (row.source, row.conversation_id, row.status) == (
        "chat",
        turn.conversation_id,
        "success",
    )
    assert rig.openai.requests("gpt-4o-mini")[0].body["temperature"] == 0.2
    with rig.sessions() as s:
        conv = conversations.get(s, rig.user.id, turn.conversation_id)
    assert (conv.title, conv.model, conv.settings) == ("Hello", MINI, {"temperature": 0.2})


def test_stopping_keeps_the_partial_answer_as_stopped(rig: Rig, sync: SyncGateway) -> None:
    rig.openai.script("gpt-4o-mini", Reply(tokens=[f"t{i} " for i in range(40)], token_delay=0.05))
    turn = ChatTurn(rig.sessions, sync, plan(rig))
    assert turn.start() is None
    texts = turn.texts()
    got = [next(texts), next(texts), next(texts)]
    texts.close()  # what a Stop click (a rerun) does to st.write_stream's generator
    [_, answer] = messages(rig)
    assert answer.status == "stopped"
    assert answer.content == "".join(got)
    row = ledger(rig, answer.request_id or "")
    assert row.status == "stopped"
    assert row.completion_tokens >= 0 and row.conversation_id == turn.conversation_id
    # The stopped answer keeps its badge, priced as the ledger prices it.
    assert (answer.model, row.served_model) == (MINI, MINI)
    d = answer.details
    assert (d["model"], d["status"], d["picked_model"]) == (MINI, "stopped", MINI)
    assert d["prompt_tokens"] == row.prompt_tokens > 0
    assert d["completion_tokens"] == row.completion_tokens > 0
    assert d["cost_micros"] == row.cost_micros and row.priced and row.cost_micros
    with rig.sessions() as s:
        totals = conversations.totals(conversations.messages(s, rig.user.id, turn.conversation_id))
    assert totals.cost_micros == row.cost_micros  # the conversation total stays priced
    final = turn.final_summary
    assert final is not None and final.status == "stopped" and final.model == MINI


def test_three_stops_keep_the_key_working_and_the_pickers_model(
    rig: Rig, sync: SyncGateway
) -> None:
    rig.set_route([GPT, HAIKU])
    rig.openai.configure("gpt-4o", tokens=[f"t{i} " for i in range(40)])
    rig.openai.script("gpt-4o", *[Reply(token_delay=0.05)] * 3)
    for _ in range(3):
        turn = ChatTurn(rig.sessions, sync, plan(rig, model="auto", picked_model=GPT))
        assert turn.start() is None
        texts = turn.texts()
        next(texts), next(texts)
        texts.close()  # Stop
    assert all(b.state == "closed" for b in rig.gateway.breaker_states())
    turn = ChatTurn(rig.sessions, sync, plan(rig, "Go on", model="auto", picked_model=GPT))
    assert turn.start() is None
    turn.run_to_end()
    answer = messages(rig)[-1]
    assert (answer.status, answer.model) == ("complete", GPT)
    assert not answer.details["fallback_used"] and rig.anthropic.count() == 0


def test_answer_is_saved_while_it_streams(rig: Rig, sync: SyncGateway) -> None:
    rig.openai.script("gpt-4o-mini", Reply(tokens=[f"w{i} " for i in range(6)], token_delay=0.05))
    turn = ChatTurn(rig.sessions, sync, plan(rig), save_every_s=0.0)
    assert turn.start() is None
    texts = turn.texts()
    for _ in range(4):
        next(texts)
    time.sleep(0.01)
    [_, answer] = messages(rig)  # mid-stream: already stored, marked incomplete
    assert answer.status == "incomplete" and answer.content.startswith("w0 w1 w2")
    "".join(texts)
    assert messages(rig)[1].status == "complete"


def test_history_and_system_prompt_reach_the_model(rig: Rig, sync: SyncGateway) -> None:
    first = ChatTurn(rig.sessions, sync, plan(rig, "First"))
    first.start()
    first.run_to_end()
    with rig.sessions() as s:
        history = conversations.messages(s, rig.user.id, first.conversation_id)
    second = ChatTurn(
        rig.sessions,
        sync,
        plan(
            rig,
            "Second",
            history=tuple(history),
            conversation_id=first.conversation_id,
            settings={"system_prompt": "Be brief."},
        ),
    )
    second.start()
    second.run_to_end()
    sent = rig.openai.requests("gpt-4o-mini")[-1].body["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[0]["content"] == "Be brief." and sent[-1]["content"] == "Second"
    assert len(messages(rig)) == 4


def test_a_refusal_saves_nothing(rig: Rig, sync: SyncGateway) -> None:
    from core.clock import utc_now
    from core.money import budgets

    with rig.sessions.begin() as s:
        budgets.set_budget(s, "user", str(rig.user.id), 1, True, "test", utc_now())
    rig.gateway.refresh()
    turn = ChatTurn(rig.sessions, sync, plan(rig))
    error = turn.start()
    assert isinstance(error, BudgetExceeded)
    turn.close()
    assert messages(rig) == []
    assert rig.openai.count() == 0


def test_an_empty_prompt_is_refused() -> None:
    with pytest.raises(InvalidInput, match="Type a message first"):
        ChatTurn(
            None,
            None,
            TurnPlan(  # type: ignore[arg-type]
                caller=None,
                prompt="  ",
                history=(),
                model="auto",  # type: ignore[arg-type]
                picked_model=MINI,
                task="",
                settings={},
            ),
        )


def test_default_model_follows_the_route_or_says_why_not(rig: Rig) -> None:
    catalog = load_catalog()
    with rig.sessions() as s:
        none = turns.default_model(s, rig.caller, "chat", catalog)
    assert none.model == MINI and none.note and "No route is set" in none.note
    rig.set_route([GPT, HAIKU])
    with rig.sessions() as s:
        routed = turns.default_model(s, rig.caller, "chat", catalog)
        assert turns.known_tasks(s)[:5] == list(turns.TASKS)
    assert (routed.model, routed.chain, routed.note) == (GPT, (GPT, HAIKU), None)
    # The sidebar's active profile has its own default route, and the picker follows it.
    from core.clock import utc_now
    from core.settings import profiles

    with rig.sessions.begin() as s:
        work = profiles.create_profile(
            s, user_id=rig.user.id, name="Work", keys_choice="auto", actor="t", now=utc_now()
        )
        profiles.set_profile_route(
            s,
            profile_id=work.id,
            models=[HAIKU],
            known_model=lambda m: True,
            actor="t",
            now=utc_now(),
        )
    with rig.sessions() as s:
        in_work = turns.default_model(s, rig.caller, "chat", catalog, "Work")
    assert (in_work.model, in_work.chain) == (HAIKU, (HAIKU,))


def test_caller_for_carries_the_team(sessions) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import add_user

    user = add_user(sessions, "erin", "member", team="Ops")
    with sessions() as s:
        caller = auth.caller_for(s, user.id)
    assert caller.username == "erin" and caller.team_id is not None
