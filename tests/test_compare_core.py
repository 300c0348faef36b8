"""Comparison rounds, sessions, sharing, votes and exports, against a real SQLite file."""

from __future__ import annotations

import csv
import io
import json
import random

import pytest
from sqlalchemy import func, select

from core.clock import utc_now
from core.compare import comparisons, export
from core.compare.rounds import (
    RoundCollector,
    RoundSettings,
    build_requests,
    check_keys,
    check_models,
    check_prompt,
    check_round,
    column_messages,
    draw_labels,
    estimate_round,
    labels_from_seed,
    prompts_from_csv,
    prompts_from_text,
    round_cost,
)
from core.errors import AllModelsFailed, InvalidInput, NoKey, NotFound, PermissionDenied
from core.money.catalog import load_catalog
from core.request import Caller, CostEstimate, Done, Summary, TextDelta
from core.settings import endpoints
from core.settings.targets import TargetResolver
from core.store.tables import CompareAnswer, CompareRound, CompareVote
from tests.conftest import add_user
from tests.gateway_support import GPT, HAIKU, MINI
from tests.support.compare import add_round, answer, caller, new_session, vote

SONNET = "anthropic/claude-3-5-sonnet-20240620"


@pytest.fixture(scope="module")
def resolver() -> TargetResolver:
    return TargetResolver(load_catalog(), [])


# --- checks before sending ---------------------------------------------------------------


@pytest.mark.parametrize(
    "models, message",
    [
        ([GPT, GPT, MINI], "chosen twice"),
        ([GPT], "at least 2"),
        ([GPT, MINI, HAIKU, SONNET, "openai/gpt-4.1"], "at most 4"),
        ([GPT, "openai/no-such-model"], "Unknown model"),
    ],
)
def test_bad_model_choices_are_refused(resolver, models, message):
    with pytest.raises(InvalidInput, match=message):
        check_models(models, resolver)


def test_empty_prompt_is_refused():
    with pytest.raises(InvalidInput, match="prompt is empty"):
        check_prompt("   \n ")
    assert check_prompt("  hi ") == "hi"


def test_models_without_a_usable_key_are_refused(sessions, resolver):
    user = add_user(sessions, "kim", "member")
    who = caller(sessions, user.id)
    with sessions() as s:
        with pytest.raises(NoKey, match="no key for anthropic, openai") as refused:
            check_keys(s, who, [GPT, HAIKU], resolver, environ={})
        assert "Providers page" in refused.value.message
        check_keys(
            s,
            who,
            [GPT, HAIKU],
            resolver,
            environ={"OPENAI_API_KEY": "sk-x", "ANTHROPIC_API_KEY": "sk-ant-y"},
        )
        with pytest.raises(NoKey, match="anthropic"):
            check_round(
                s,
                who,
                RoundSettings(models=(GPT, HAIKU)),
                ["hello"],
                resolver=resolver,
                environ={"OPENAI_API_KEY": "sk-x"},
            )


def test_endpoint_models_need_no_key(sessions):
    user = add_user(sessions, "kim", "member")
    catalog = load_catalog()
    with sessions.begin() as s:
        endpoints.add_endpoint(
            s,
            name="local",
            kind="openai-compatible",
            api_base="http://127.0.0.1:9/v1",
            models=("llama3",),
            actor="test",
            now=utc_now(),
            builtin_providers=catalog.providers(),
        )
    with sessions() as s:
        local = TargetResolver(catalog, endpoints.list_endpoints(s))
        models, prompts = check_round(
            s,
            caller(sessions, user.id),
            RoundSettings(models=("local/llama3", GPT)),
            ["hi"],
            resolver=local,
            environ={"OPENAI_API_KEY": "sk-x"},
        )
    assert models == ("local/llama3", GPT) and prompts == ("hi",)


def test_bad_settings_and_oversized_batches_are_refused(sessions, resolver):
    user = add_user(sessions, "kim", "member")
    env = {"OPENAI_API_KEY": "sk-x"}
    with sessions() as s:
        who = caller(sessions, user.id)
        with pytest.raises(InvalidInput, match="Temperature"):
            check_round(
                s,
                who,
                RoundSettings(models=(GPT, MINI), temperature=3.0),
                ["x"],
                resolver=resolver,
                environ=env,
            )
        with pytest.raises(InvalidInput, match="at most 50 prompts"):
            check_round(
                s,
                who,
                RoundSettings(models=(GPT, MINI)),
                ["x"] * 51,
                resolver=resolver,
                environ=env,
            )


# --- labels, requests, collection ----------------------------------------------------------


def test_labels_are_random_but_reproducible_from_the_stored_seed():
    models = [GPT, MINI, HAIKU, SONNET]
    labels, seed = draw_labels(models, random.Random(3))
    assert sorted(labels) == ["A", "B", "C", "D"] and sorted(labels.values()) == sorted(models)
    assert labels_from_seed(models, seed) == labels
    orders = {tuple(draw_labels(models, random.Random(i))[0].values()) for i in range(20)}
    assert len(orders) > 1


def test_each_column_continues_its_own_conversation():
    who = Caller(1, "kim", "member", 2)
    settings = RoundSettings(
        models=(GPT, MINI), system_prompt="Be brief.", task="qa", max_tokens=50
    )
    history = {GPT: [("first?", "gpt said one")], MINI: [("first?", "mini said one")]}
    gpt, mini = build_requests(who, settings, [GPT, MINI], "second?", history)
    assert [m["content"] for m in gpt.messages] == [
        "Be brief.",
        "first?",
        "gpt said one",
        "second?",
    ]
    assert mini.messages[2]["content"] == "mini said one"
    assert gpt.fallbacks == () and gpt.source == "compare" and gpt.stream
    assert (gpt.task, gpt.max_tokens) == ("qa", 50)
    with_fallbacks = build_requests(
        who, RoundSettings(models=(GPT, MINI), fallbacks=True), [GPT], "x"
    )
    assert with_fallbacks[0].fallbacks is None  # the route's fallbacks apply
    assert column_messages("", [], "hi") == ({"role": "user", "content": "hi"},)


def test_estimate_sums_columns_and_lists_unpriced_models():
    who = Caller(1, "kim", "member")
    requests = build_requests(
        who, RoundSettings(models=(GPT, MINI, "x/y")), [GPT, MINI, "x/y"], "hi"
    )
    found = {
        GPT: CostEstimate(5, 10, 100),
        MINI: CostEstimate(5, 1, 20),
        "x/y": CostEstimate(5, None, None, ("x/y",)),
    }
    total = estimate_round(lambda r: found[r.model], requests)
    assert (total.low_micros, total.high_micros, total.unpriced_models) == (11, 120, ("x/y",))


def test_collector_keeps_each_column_apart_and_a_refusal_in_its_own_column():
    collector = RoundCollector([GPT, MINI])
    summary = Summary(
        request_id="r1",
        requested_model=GPT,
        chain=(GPT,),
        route_source="request",
        status="success",
        attempts=(),
        model=GPT,
        cost_micros=42,
        latency_ms=300,
    )
    collector.add(0, TextDelta("Hel"))
    collector.add(1, AllModelsFailed("openai/gpt-4o-mini: down"))
    collector.add(0, TextDelta("lo"))
    collector.add(0, Done(summary))
    gpt, mini = collector.answers()
    assert (gpt.text, gpt.status, gpt.error, gpt.cost_micros) == ("Hello", "success", None, 42)
    assert (mini.status, mini.error, mini.cost_micros) == ("refused", "openai/gpt-4o-mini: down", 0)
    assert round_cost([gpt, mini]) == 42
    assert round_cost([gpt, answer(HAIKU, cost=None)]) is None


def test_batch_prompts_from_text_and_csv():
    assert prompts_from_text("one\n\n  two  \n") == ["one", "two"]
    data = '\ufeffid,Prompt\n1,Summarise this\n2,\n3,"Translate, please"\n'.encode()
    assert prompts_from_csv(data) == ["Summarise this", "Translate, please"]
    with pytest.raises(InvalidInput, match="column named `prompt`"):
        prompts_from_csv(b"question\nwhat?\n")
    with pytest.raises(InvalidInput, match="UTF-8"):
        prompts_from_csv(b"prompt\n\xff\xfe\xfa\n")


# --- sessions, sharing, votes ----------------------------------------------------------------


@pytest.fixture
def people(sessions):
    owner = caller(sessions, add_user(sessions, "olga", "member", team="red").id)
    mate = caller(sessions, add_user(sessions, "max", "member", team="red").id)
    other = caller(sessions, add_user(sessions, "bea", "member", team="blue").id)
    loner = caller(sessions, add_user(sessions, "lou", "member").id)
    return owner, mate, other, loner


def test_blind_names_are_revealed_to_each_viewer_only_by_their_own_vote(sessions, people):
    owner, mate, _, _ = people
    sid = new_session(sessions, owner, [GPT, MINI, HAIKU])
    rid = add_round(sessions, owner, sid, [answer(GPT), answer(MINI), answer(HAIKU)])
    with sessions() as s:
        view = comparisons.open_session(s, sid, owner)
    (r,) = view.rounds
    assert not r.revealed and [a.label for a in r.answers] == ["A", "B", "C"]
    assert r.name(r.answers[0]) == "Model A"

    vote(sessions, owner, rid, "best", MINI, comment="clearest")
    with sessions() as s:
        mine = comparisons.open_session(s, sid, owner).rounds[0]
        theirs = comparisons.open_session(s, sid, mate).rounds[0]
    assert mine.revealed and mine.my_vote is not None and mine.my_vote.winner == MINI
    assert mine.name(mine.answers[0]) == mine.answers[0].model
    assert not theirs.revealed and theirs.votes == 1 and theirs.my_vote is None


def test_revoting_replaces_the_vote(sessions, people):
    owner, mate, _, _ = people
    sid = new_session(sessions, owner, [GPT, MINI])
    rid = add_round(sessions, owner, sid, [answer(GPT), answer(MINI)])
    vote(sessions, owner, rid, "best", GPT)
    vote(sessions, owner, rid, "tie", comment="both fine")
    vote(sessions, mate, rid, "all_bad")
    with sessions() as s:
        rows = s.scalars(select(CompareVote).order_by(CompareVote.user_id)).all()
        r = comparisons.open_session(s, sid, owner).rounds[0]
    assert [(v.user_id, v.choice, v.winner, v.comment) for v in rows] == [
        (owner.user_id, "tie", None, "both fine"),
        (mate.user_id, "all_bad", None, ""),
    ]
    assert r.votes == 2 and r.tally == {"tie": 1, "all_bad": 1}
    with sessions.begin() as s, pytest.raises(InvalidInput, match="Pick which answer"):
        comparisons.cast_vote(s, owner, rid, choice="best", winner_label="Z", now=utc_now())


def test_sharing_is_the_owners_team_read_only(sessions, people):
    owner, mate, other, loner = people
    sid = new_session(sessions, owner, [GPT, MINI])
    rid = add_round(sessions, owner, sid, [answer(GPT), answer(MINI)])
    with sessions() as s:
        assert comparisons.open_session(s, sid, mate).read_only
        assert not comparisons.open_session(s, sid, owner).read_only
        for outsider in (other, loner):
            with pytest.raises(PermissionDenied, match="not shared with you"):
                comparisons.open_session(s, sid, outsider)
        with pytest.raises(NotFound):
            comparisons.open_session(s, "0" * 32, owner)
        assert [x.id for x in comparisons.list_sessions(s, mate)] == [sid]
        assert comparisons.list_sessions(s, other) == []
    vote(sessions, mate, rid, "best", GPT)  # teammates may vote
    with pytest.raises(PermissionDenied):
        vote(sessions, other, rid, "tie")
    with pytest.raises(PermissionDenied, match="Only the session's owner"):
        add_round(sessions, mate, sid, [answer(GPT), answer(MINI)])

    with sessions.begin() as s:
        comparisons.set_shared(s, owner, sid, False, now=utc_now())
    with sessions() as s:
        with pytest.raises(PermissionDenied):
            comparisons.open_session(s, sid, mate)
        assert comparisons.list_sessions(s, mate) == []


def test_histories_leave_out_failed_answers_and_batch_rounds(sessions, people):
    owner = people[0]
    sid = new_session(sessions, owner, [GPT, MINI])
    add_round(
        sessions,
        owner,
        sid,
        [answer(GPT, text="g1"), answer(MINI, text="", error="down", status="failed")],
        prompt="q1",
    )
    add_round(sessions, owner, sid, [answer(GPT, text="g2"), answer(MINI, text="m2")], prompt="q2")
    add_round(
        sessions,
        owner,
        sid,
        [answer(GPT, text="b"), answer(MINI, text="b")],
        prompt="batch",
        kind="batch",
    )
    with sessions() as s:
        found = comparisons.histories(s, sid)
    assert found == {GPT: [("q1", "g1"), ("q2", "g2")], MINI: [("q2", "m2")]}


def test_a_round_needs_every_model_once(sessions, people):
    owner = people[0]
    sid = new_session(sessions, owner, [GPT, MINI])
    with pytest.raises(InvalidInput, match="exactly one answer"):
        add_round(sessions, owner, sid, [answer(GPT), answer(HAIKU)])


def test_delete_removes_everything_and_only_the_owner_may(sessions, people):
    owner, mate, _, _ = people
    sid = new_session(sessions, owner, [GPT, MINI])
    rid = add_round(sessions, owner, sid, [answer(GPT), answer(MINI)])
    vote(sessions, mate, rid, "tie")
    with sessions.begin() as s, pytest.raises(PermissionDenied):
        comparisons.delete_session(s, mate, sid, now=utc_now())
    with sessions.begin() as s:
        comparisons.delete_session(s, owner, sid, now=utc_now())
    with sessions() as s:
        for table in (CompareRound, CompareAnswer, CompareVote):
            assert s.scalar(select(func.count()).select_from(table)) == 0


def test_model_sets_are_private_to_their_owner(sessions, people):
    owner, mate, _, _ = people
    with sessions.begin() as s:
        comparisons.save_model_set(s, owner, "cheap", [MINI, HAIKU], now=utc_now())
        comparisons.save_model_set(s, owner, "cheap", [MINI, GPT], now=utc_now())  # replaces
    with sessions() as s:
        (found,) = comparisons.list_model_sets(s, owner)
        assert found.models == (MINI, GPT)
        assert comparisons.list_model_sets(s, mate) == []
    with sessions.begin() as s, pytest.raises(NotFound):
        comparisons.delete_model_set(s, mate, found.id)
    with sessions.begin() as s:
        with pytest.raises(InvalidInput, match="name"):
            comparisons.save_model_set(s, owner, "  ", [MINI, GPT], now=utc_now())
        comparisons.delete_model_set(s, owner, found.id)


# --- exports -------------------------------------------------------------------------------


def test_exports_hide_blind_names_until_the_viewer_votes(sessions, people):
    owner = people[0]
    sid = new_session(sessions, owner, [GPT, MINI])
    rid = add_round(
        sessions,
        owner,
        sid,
        [answer(GPT, cost=1500, text="warm red"), answer(MINI, cost=None, text="cool blue")],
        prompt="Name a colour",
    )
    with sessions() as s:
        hidden = comparisons.open_session(s, sid, owner)
    for text in (export.to_markdown(hidden), export.to_csv(hidden), export.to_json(hidden)):
        assert GPT not in text and MINI not in text
        assert "Name a colour" in text and "warm red" in text and "cool blue" in text
        assert "0.0015" not in text  # a price could give the model away
    assert "Model A" in export.to_markdown(hidden)

    vote(sessions, owner, rid, "best", GPT, comment="warmer")
    with sessions() as s:
        shown = comparisons.open_session(s, sid, owner)
    md = export.to_markdown(shown)
    assert f"### {GPT}\n" in md and f"### {MINI}\n" in md and "warmer" in md
    rows = list(csv.DictReader(io.StringIO(export.to_csv(shown))))
    assert {r["model"]: r["cost_usd"] for r in rows} == {GPT: "0.0015", MINI: "unpriced"}
    assert all(r["my_vote"].startswith(f"best: {GPT}") for r in rows)
    data = json.loads(export.to_json(shown))
    assert data["models"] == [GPT, MINI] and data["cost_usd"] == "unpriced"
    assert data["rounds"][0]["my_comment"] == "warmer"
    totals = {t["model"]: t for t in export.model_totals(shown)}
    assert totals[GPT]["cost $"] == "0.0015" and totals[MINI]["cost $"] == "unpriced"
