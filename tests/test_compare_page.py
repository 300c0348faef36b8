"""AppTest: the Compare page against fake providers through the app's own gateway."""

from __future__ import annotations

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.store.tables import CompareAnswer, CompareRound, CompareSession, CompareVote
from tests.conftest import add_user
from tests.fakes import Reply, Status
from tests.gateway_support import GPT, HAIKU, MINI
from tests.support.pages import signed_in, texts

PAGE = "app_pages/compare.py"
HAIKU_NAME = "claude-3-haiku-20240307"


def click(at: AppTest, label: str) -> AppTest:
    return next(b for b in at.button if b.label == label).click().run()


def start_round(at: AppTest, models: list[str], prompt: str, *, blind: bool = True) -> AppTest:
    at.multiselect(key="cmp_models").set_value(models)
    at.toggle(key="cmp_blind").set_value(blind)
    at.text_area(key="cmp_prompt").input(prompt)
    return click(at.run(), "Send to all models")


def only_session(sessions) -> CompareSession:
    with sessions() as s:
        (row,) = s.scalars(select(CompareSession)).all()
        return row


def labels_of(sessions) -> dict[str, str]:
    with sessions() as s:
        return s.scalars(select(CompareRound.labels)).one()


def round_id(sessions) -> int:
    with sessions() as s:
        return s.scalars(select(CompareRound.id)).one()


def test_a_three_model_round_where_one_model_fails(sessions, app_fakes):
    add_user(sessions, "dana", "member", team="red")
    app_fakes.anthropic.script(None, Status(400))
    at = signed_in("dana", PAGE)
    assert "Estimated cost of this round" not in texts(at)
    at.multiselect(key="cmp_models").set_value([GPT, MINI, HAIKU])
    at.text_area(key="cmp_prompt").input("Say hello")
    at.run()
    assert "Estimated cost of this round: $" in texts(at)  # shown before anything is sent
    assert app_fakes.openai.count() == 0

    at = click(at, "Send to all models")
    assert not at.exception, at.exception
    page = texts(at)
    assert app_fakes.openai.reply_text("gpt-4o").strip() in page
    assert app_fakes.openai.reply_text("gpt-4o-mini").strip() in page
    (error,) = at.error  # only the failing column shows an error
    assert "failed" in error.value and HAIKU not in error.value  # blind: named by its label
    with sessions() as s:
        answers = {a.model: a for a in s.scalars(select(CompareAnswer))}
    assert answers[GPT].status == answers[MINI].status == "success"
    assert answers[HAIKU].status == "failed" and answers[HAIKU].error
    assert answers[GPT].completion_tokens > 0 and answers[GPT].cost_micros
    assert app_fakes.anthropic.count() == 1  # fallbacks off: the failing model alone, once


def test_blind_vote_then_reveal(sessions, app_fakes):
    add_user(sessions, "dana", "member", team="red")
    at = start_round(signed_in("dana", PAGE), [GPT, HAIKU], "Which is better?")
    assert not at.exception, at.exception
    before = texts(at)
    assert "#### Model A" in before and "#### Model B" in before
    assert GPT not in before and HAIKU not in before
    labels = labels_of(sessions)
    winner_label = next(k for k, v in labels.items() if v == HAIKU)
    rid = round_id(sessions)
    at.radio(key=f"cmp_vote_{rid}").set_value(f"{winner_label} is best")
    at.text_input(key=f"cmp_comment_{rid}").input("more direct")
    at = click(at, "Vote")
    assert not at.exception, at.exception
    after = texts(at)
    assert "Vote saved." in after
    assert f"#### {winner_label} · {HAIKU}" in after and GPT in after
    with sessions() as s:
        (vote,) = s.scalars(select(CompareVote)).all()
    assert (vote.choice, vote.winner, vote.comment) == ("best", HAIKU, "more direct")

    at.radio(key=f"cmp_vote_{rid}").set_value("Tie")
    at = click(at, "Replace my vote")
    with sessions() as s:
        (vote,) = s.scalars(select(CompareVote)).all()  # replaced, not added
    assert vote.choice == "tie" and vote.winner is None


def test_a_saved_session_reopens_in_a_fresh_session(sessions, app_fakes):
    add_user(sessions, "dana", "member", team="red")
    start_round(signed_in("dana", PAGE), [GPT, MINI], "Name a colour", blind=False)
    saved = only_session(sessions)

    fresh = signed_in("dana", PAGE)
    assert app_fakes.openai.reply_text("gpt-4o").strip() not in texts(fresh)
    fresh.selectbox(key="cmp_open").select_index(0)
    fresh = click(fresh.run(), "Open")
    assert not fresh.exception, fresh.exception
    page = texts(fresh)
    assert "Name a colour" in page and app_fakes.openai.reply_text("gpt-4o").strip() in page
    assert f"A · {labels_of(sessions)['A']}" in page  # the same labels as when it ran
    assert fresh.query_params["session"] == saved.id  # the URL is the share link


def test_follow_up_continues_each_columns_own_conversation(sessions, app_fakes):
    add_user(sessions, "dana", "member", team="red")
    app_fakes.openai.configure("gpt-4o", tokens=["big ", "answer"])
    app_fakes.openai.configure("gpt-4o-mini", tokens=["small ", "answer"])
    at = start_round(signed_in("dana", PAGE), [GPT, MINI], "First question")
    at.text_area(key="cmp_followup").input("And then?")
    at = click(at.run(), "Send follow-up")
    assert not at.exception, at.exception
    last_gpt = app_fakes.openai.requests("gpt-4o")[-1].body["messages"]
    last_mini = app_fakes.openai.requests("gpt-4o-mini")[-1].body["messages"]
    assert [m["content"] for m in last_gpt] == ["First question", "big answer", "And then?"]
    assert [m["content"] for m in last_mini] == ["First question", "small answer", "And then?"]
    assert "Round 2" in texts(at)


def test_a_shared_link_is_read_only_for_a_teammate_who_can_vote(sessions, app_fakes):
    add_user(sessions, "dana", "member", team="red")
    add_user(sessions, "max", "member", team="red")
    add_user(sessions, "bea", "member", team="blue")
    start_round(signed_in("dana", PAGE), [GPT, MINI], "Shared question")
    sid = only_session(sessions).id
    answer_text = app_fakes.openai.reply_text("gpt-4o").strip()

    mate = signed_in("max")
    mate.query_params["session"] = sid
    mate.switch_page(PAGE).run()
    assert not mate.exception, mate.exception
    page = texts(mate)
    assert "read-only" in page and answer_text in page and GPT not in page
    assert not any(t.key == "cmp_followup" for t in mate.text_area)
    assert "Send follow-up" not in [b.label for b in mate.button]
    assert "Delete session" not in [b.label for b in mate.button]
    mate.radio(key=f"cmp_vote_{round_id(sessions)}").set_value("All bad")
    mate = click(mate, "Vote")
    assert "Vote saved." in texts(mate) and GPT in texts(mate)
    with sessions() as s:
        (vote,) = s.scalars(select(CompareVote)).all()
        assert vote.choice == "all_bad"

    outsider = signed_in("bea")
    outsider.query_params["session"] = sid
    outsider.switch_page(PAGE).run()
    assert any("not shared with you" in e.value for e in outsider.error)
    assert answer_text not in texts(outsider)
    assert not outsider.radio


def test_refusals_happen_before_anything_is_sent(sessions, app_fakes, monkeypatch):
    add_user(sessions, "dana", "member", team="red")
    at = signed_in("dana", PAGE)
    at = start_round(at, [GPT], "hello")
    assert any("at least 2 models" in e.value for e in at.error)
    at = start_round(at, [GPT, MINI], "   ")
    assert any("prompt is empty" in e.value for e in at.error)
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    at = start_round(at, [GPT, HAIKU], "hello")
    assert any("no key for anthropic" in e.value for e in at.error)
    assert app_fakes.openai.count() == 0 and app_fakes.anthropic.count() == 0
    with sessions() as s:
        assert s.scalars(select(CompareSession)).all() == []


def test_batch_run_from_pasted_prompts(sessions, app_fakes):
    add_user(sessions, "dana", "member", team="red")
    app_fakes.openai.configure("gpt-4o", default=Reply(first_token_delay=0.05))
    at = signed_in("dana", PAGE)
    at.multiselect(key="cmp_models").set_value([GPT, MINI])
    at.text_area(key="cmp_batch_text").input("first prompt\n\nsecond prompt\n")
    at = click(at.run(), "Run batch")
    assert not at.exception, at.exception
    page = texts(at)
    assert "Batch finished: 2 prompts × 2 models." in page
    assert "Totals per model" in page
    totals = at.dataframe[1].value
    assert set(totals["model"]) == {GPT, MINI} and list(totals["answers"]) == [2, 2]
    with sessions() as s:
        kinds = s.scalars(select(CompareRound.kind)).all()
    assert kinds == ["batch", "batch"]
    assert app_fakes.openai.count() == 4
