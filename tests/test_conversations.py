"""Conversations and messages: ownership, ordering, search, rename, delete, totals, export."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.chat import conversations, export
from core.clock import utc_now
from core.errors import InvalidInput, NotFound
from core.store.tables import AuditEntry, ChatMessage
from tests.conftest import add_user

T0 = utc_now()


def make(
    sessions: sessionmaker[Session],
    user_id: int,
    title: str,
    minutes: int = 0,
    texts: tuple[str, ...] = (),
) -> str:
    with sessions.begin() as s:
        conv = conversations.create(
            s,
            user_id=user_id,
            title=title,
            model="openai/gpt-4o",
            task="chat",
            settings={"temperature": 0.5, "junk": 1},
            now=T0 + timedelta(minutes=minutes),
        )
        for i, text in enumerate(texts):
            conversations.add_message(
                s,
                user_id,
                conv.id,
                role="user" if i % 2 == 0 else "assistant",
                content=text,
                now=T0 + timedelta(minutes=minutes),
                request_id=f"r{i}" if i % 2 else None,
                details={
                    "model": "openai/gpt-4o",
                    "prompt_tokens": 10,
                    "completion_tokens": 5,
                    "cost_micros": 70,
                    "latency_ms": 300,
                    "ttft_ms": 90,
                    "attempts": [],
                }
                if i % 2
                else None,
            )
        return conv.id


def test_listed_newest_first_and_only_the_owners(sessions: sessionmaker[Session]) -> None:
    alice, bob = add_user(sessions, "alice"), add_user(sessions, "bob")
    old = make(sessions, alice.id, "Old", minutes=1)
    new = make(sessions, alice.id, "New", minutes=5)
    make(sessions, bob.id, "Bob's", minutes=9)
    with sessions() as s:
        assert [c.id for c in conversations.list_conversations(s, alice.id)] == [new, old]
        assert conversations.count(s, alice.id) == 2
        with pytest.raises(NotFound):
            conversations.get(s, bob.id, old)
        with pytest.raises(NotFound):
            conversations.messages(s, bob.id, old)
    # A new message moves a conversation to the top.
    with sessions.begin() as s:
        conversations.add_message(
            s, alice.id, old, role="user", content="again", now=T0 + timedelta(minutes=10)
        )
    with sessions() as s:
        assert [c.title for c in conversations.list_conversations(s, alice.id)] == ["Old", "New"]


def test_settings_keep_only_known_keys(sessions: sessionmaker[Session]) -> None:
    alice = add_user(sessions, "alice")
    cid = make(sessions, alice.id, "x")
    with sessions() as s:
        assert conversations.get(s, alice.id, cid).settings == {"temperature": 0.5}


def test_search_matches_titles_and_message_text(sessions: sessionmaker[Session]) -> None:
    alice = add_user(sessions, "alice")
    make(sessions, alice.id, "Offsite plan", texts=("Where shall we go?",))
    make(sessions, alice.id, "Budget", texts=("What is 100% of the_total?",))
    with sessions() as s:

        def titles(q: str) -> list[str]:
            return [c.title for c in conversations.list_conversations(s, alice.id, query=q)]

        assert titles("OFFSITE") == ["Offsite plan"]
        assert titles("shall we") == ["Offsite plan"]
        assert titles("100%") == ["Budget"]
        assert titles("tota_") == []  # LIKE wildcards are taken literally
        assert titles("the_total") == ["Budget"]


def test_rename_validates_and_delete_removes_messages(sessions: sessionmaker[Session]) -> None:
    alice, bob = add_user(sessions, "alice"), add_user(sessions, "bob")
    cid = make(sessions, alice.id, "Title", texts=("q", "a"))
    with sessions.begin() as s:
        with pytest.raises(InvalidInput, match="cannot be empty"):
            conversations.rename(s, alice.id, cid, "  ", T0)
        with pytest.raises(InvalidInput, match="at most 200"):
            conversations.rename(s, alice.id, cid, "x" * 201, T0)
        with pytest.raises(NotFound):
            conversations.rename(s, bob.id, cid, "Stolen", T0)
        assert conversations.rename(s, alice.id, cid, "  New   name ", T0).title == "New name"
    with sessions.begin() as s, pytest.raises(NotFound):
        conversations.delete_conversation(s, bob.id, cid, actor="bob", now=T0)
    with sessions.begin() as s:
        conversations.delete_conversation(s, alice.id, cid, actor="alice", now=T0)
    with sessions() as s:
        assert conversations.count(s, alice.id) == 0
        assert s.scalars(select(ChatMessage)).all() == []
        assert [
            a.action for a in s.scalars(select(AuditEntry)) if a.action.startswith("conversation")
        ] == ["conversation.delete"]


def test_update_message_only_touches_the_owners(sessions: sessionmaker[Session]) -> None:
    alice, bob = add_user(sessions, "alice"), add_user(sessions, "bob")
    cid = make(sessions, alice.id, "t", texts=("q", "partial"))
    with sessions() as s:
        answer = conversations.messages(s, alice.id, cid)[1]
    with sessions.begin() as s:
        conversations.update_message(s, bob.id, answer.id, content="hijack", status="complete")
        conversations.update_message(s, alice.id, answer.id, content="partial…", status="stopped")
    with sessions() as s:
        got = conversations.messages(s, alice.id, cid)[1]
    assert (got.content, got.status) == ("partial…", "stopped")
    with sessions.begin() as s, pytest.raises(ValueError):
        conversations.update_message(s, alice.id, answer.id, content="", status="weird")


def test_auto_title() -> None:
    assert conversations.auto_title("  Plan\nthe   offsite ") == "Plan the offsite"
    long = "Please write a detailed plan for the company offsite in the mountains next spring"
    title = conversations.auto_title(long)
    assert title.endswith("…") and len(title) <= 61 and title.startswith("Please write")
    assert conversations.auto_title("   ") == "New conversation"


def test_totals_sum_answers_and_flag_unpriced(sessions: sessionmaker[Session]) -> None:
    alice = add_user(sessions, "alice")
    cid = make(sessions, alice.id, "t", texts=("q1", "a1", "q2", "a2"))
    with sessions() as s:
        items = conversations.messages(s, alice.id, cid)
    totals = conversations.totals(items)
    assert (totals.prompt_tokens, totals.completion_tokens, totals.cost_micros) == (20, 10, 140)
    assert totals.plus(1, 1, None).cost_micros is None  # unpriced is never $0


def test_confirmation_threshold(sessions: sessionmaker[Session]) -> None:
    alice = add_user(sessions, "alice")
    with sessions.begin() as s:
        default = conversations.DEFAULT_CONFIRM_ABOVE_MICROS
        assert conversations.confirm_above(s, alice.id) == default
        conversations.set_confirm_above(s, alice.id, 0, T0)
        conversations.set_confirm_above(s, alice.id, 123, T0)
        with pytest.raises(InvalidInput):
            conversations.set_confirm_above(s, alice.id, -1, T0)
    with sessions() as s:
        assert conversations.confirm_above(s, alice.id) == 123


def test_export_markdown_and_json(sessions: sessionmaker[Session]) -> None:
    alice = add_user(sessions, "alice")
    cid = make(sessions, alice.id, "Plan: the offsite!", texts=("Where?", "The **hills**."))
    with sessions() as s:
        conv = conversations.get(s, alice.id, cid)
        items = conversations.messages(s, alice.id, cid)
    md = export.to_markdown(conv, items)
    assert md.startswith("# Plan: the offsite!\n")
    assert "## You\n\nWhere?" in md and "## Assistant\n\nThe **hills**." in md
    assert "> gpt-4o · 10 in / 5 out · $0.00007 · 300 ms · first token 90 ms" in md
    data = json.loads(export.to_json(conv, items))
    assert data["title"] == "Plan: the offsite!" and data["settings"] == {"temperature": 0.5}
    assert [(m["role"], m["content"], m["status"]) for m in data["messages"]] == [
        ("user", "Where?", "complete"),
        ("assistant", "The **hills**.", "complete"),
    ]
    assert data["messages"][1]["request_id"] == "r1"
    assert export.file_name(conv, "md") == "chat-plan-the-offsite.md"
