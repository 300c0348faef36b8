"""Leaderboard maths on constructed votes with known answers, and ratings in routing."""

from __future__ import annotations

import math
import random
from datetime import timedelta

import pytest

from core.clock import utc_now
from core.compare import leaderboard
from core.compare.leaderboard import VoteRecord, fit_strengths, rating_of, rows_from_votes
from core.settings.routes import Weights
from tests.conftest import add_user
from tests.gateway_support import GPT, HAIKU, MINI
from tests.support.compare import caller, voted_rounds

A, B, C = "openai/a", "openai/b", "openai/c"


def best(winner: str, *models: str) -> VoteRecord:
    return VoteRecord(0, tuple(models), "best", winner)


def draw(choice: str, *models: str) -> VoteRecord:
    return VoteRecord(0, tuple(models), choice)


def test_a_model_that_always_wins_rates_highest():
    votes = [best(A, A, B), best(A, A, C), best(A, A, B, C), best(B, B, C)] * 5
    rows = rows_from_votes(votes, rng=random.Random(1))
    assert [r.model for r in rows] == [A, B, C]
    ratings = {r.model: r.rating for r in rows}
    assert ratings[A] > ratings[B] > ratings[C]
    assert all(math.isfinite(r) for r in ratings.values())  # the prior keeps it finite
    won = {r.model: (r.wins, r.votes, r.win_rate) for r in rows}
    assert won[A] == (15, 15, 1.0)
    assert won[C] == (0, 15, 0.0)


def test_symmetric_votes_give_equal_ratings():
    votes = [best(A, A, B), best(B, A, B)] * 6 + [draw("tie", A, B), draw("all_bad", A, B)]
    strengths = fit_strengths(votes)
    assert strengths[A] == pytest.approx(strengths[B], rel=1e-9)
    assert rating_of(strengths[A]) == pytest.approx(1000.0)
    assert leaderboard.quality_of(strengths[A]) == pytest.approx(0.5)


def test_known_bradley_terry_odds_without_prior():
    # A beats B three times in four: the maximum-likelihood odds are exactly 3 to 1.
    votes = [best(A, A, B)] * 3 + [best(B, A, B)]
    strengths = fit_strengths(votes, prior=0.0)
    assert strengths[A] / strengths[B] == pytest.approx(3.0, rel=1e-6)
    assert rating_of(strengths[A]) - rating_of(strengths[B]) == pytest.approx(
        400 * math.log10(3), rel=1e-6
    )


def test_ties_are_half_a_win_and_not_a_win_in_the_win_rate():
    votes = [best(A, A, B), draw("tie", A, B)]
    rows = {r.model: r for r in rows_from_votes(votes, rng=random.Random(0))}
    assert rows[A].win_rate == 0.5 and rows[B].win_rate == 0.0
    assert rows[A].rating > rows[B].rating


def test_intervals_contain_the_estimate_and_are_reproducible():
    votes = [best(A, A, B)] * 7 + [best(B, A, B)] * 3 + [best(C, B, C)] * 5 + [best(B, B, C)] * 5
    first = rows_from_votes(votes, rng=random.Random(42))
    again = rows_from_votes(votes, rng=random.Random(42))
    assert first == again  # the injected, seeded RNG makes the bootstrap repeatable
    for row in first:
        assert row.ci_low < row.rating < row.ci_high, row
    fewer = rows_from_votes(votes[::4], rng=random.Random(42))
    width = {r.model: r.ci_high - r.ci_low for r in first}
    assert all(r.ci_high - r.ci_low > width[r.model] for r in fewer)  # less data, wider


def test_no_votes_no_rows():
    assert rows_from_votes([], rng=random.Random(0)) == []
    assert fit_strengths([]) == {}


def test_leaderboard_from_the_database_with_filters(sessions):
    red = add_user(sessions, "red1", "member", team="red")
    blue = add_user(sessions, "blue1", "member", team="blue")
    r, b = caller(sessions, red.id), caller(sessions, blue.id)
    old = utc_now() - timedelta(days=40)
    voted_rounds(
        sessions,
        r,
        [([GPT, MINI], "best", GPT)] * 3,
        task="summarise",
        costs={GPT: 900, MINI: 100},
        latencies={GPT: 1200, MINI: 300},
    )
    voted_rounds(sessions, r, [([GPT, HAIKU], "best", HAIKU)] * 2, task="code", costs={HAIKU: None})
    voted_rounds(sessions, b, [([GPT, MINI], "best", MINI)] * 4)
    voted_rounds(sessions, r, [([GPT, MINI], "best", MINI)] * 5, now=old)

    with sessions() as s:
        team_red = r.team_id
        everything = {x.model: x for x in leaderboard.leaderboard(s)}
        red_recent = {
            x.model: x
            for x in leaderboard.leaderboard(
                s, team_id=team_red, since=utc_now() - timedelta(days=30)
            )
        }
        summarise = leaderboard.leaderboard(s, task="summarise")
        assert leaderboard.vote_tasks(s) == ["", "code", "summarise"]
        scores = leaderboard.quality_scores(s, task="summarise")

    assert everything[MINI].votes == 3 + 4 + 5
    assert red_recent[GPT].votes == 5 and red_recent[MINI].votes == 3
    assert red_recent[GPT].wins == 3 and red_recent[MINI].wins == 0  # old MINI wins left out
    assert [x.model for x in summarise] == [GPT, MINI]
    gpt = {x.model: x for x in summarise}[GPT]
    assert (gpt.median_cost_micros, gpt.median_latency_ms, gpt.priced) == (900, 1200, True)
    assert gpt.quality_per_dollar == pytest.approx(gpt.quality / 0.0009)
    haiku = red_recent[HAIKU]
    assert haiku.priced is False and haiku.median_cost_micros is None
    assert haiku.quality_per_dollar is None  # unpriced is never treated as free
    assert set(scores) == {GPT, MINI}
    assert 0.5 < scores[GPT] < 1 and 0 < scores[MINI] < 0.5


async def test_a_better_rated_model_moves_up_in_cost_optimised_routing(rig):
    quality_first = Weights(price=0.0, latency=0.0, quality=1.0, preference=0.0)
    rig.set_route([MINI, GPT], cost_optimised=True, weights=quality_first)
    before = await rig.gateway.complete(rig.request("auto"))
    assert before.summary.chain[0] == MINI  # no votes: equal quality, route order stands

    owner = caller(rig.sessions, rig.user.id)
    voted_rounds(rig.sessions, owner, [([GPT, MINI], "best", GPT)] * 4)
    rig.gateway.refresh()  # drops cached ratings along with the other stats
    after = await rig.gateway.complete(rig.request("auto"))
    assert after.summary.chain[0] == GPT
    assert after.summary.model == GPT
    assert after.summary.order_reason is not None
    assert after.summary.order_reason.index(GPT) < after.summary.order_reason.index(MINI)


def test_leaderboard_page_shows_ratings_and_the_cost_scatter(sessions):
    from tests.support.pages import signed_in, texts

    dana = add_user(sessions, "dana", "member", team="red")
    voted_rounds(
        sessions,
        caller(sessions, dana.id),
        [([GPT, MINI], "best", GPT)] * 3 + [([GPT, HAIKU], "tie", None)],
        task="summarise",
        costs={GPT: 900, MINI: 100, HAIKU: None},
    )
    at = signed_in("dana", "app_pages/leaderboard.py")
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert table["model"].iloc[0] == GPT
    assert set(table["model"]) == {GPT, MINI, HAIKU}
    assert (
        dict(zip(table["model"], table["median cost / answer"], strict=True))[HAIKU] == "unpriced"
    )
    assert any("Unpriced" in w.value and HAIKU in w.value for w in at.warning)
    assert "Quality per dollar" in texts(at)
    assert len(at.get("plotly_chart")) == 1
    assert at.selectbox[1].options == ["Overall (every task)", "summarise"]
    at.selectbox[1].select("summarise").run()
    assert len(at.dataframe[0].value) == 3


def test_bootstrap_intervals_match_refitting_each_resample_one_by_one():
    """The batched fit gives the intervals refitting every resample separately gives."""
    rng = random.Random(5)
    votes = []
    for _ in range(120):
        models = tuple(rng.sample([A, B, C], 2))
        votes.append(best(models[0] if rng.random() < 0.7 else models[1], *models))
    votes += [draw("tie", A, C)] * 10
    batched = leaderboard.bootstrap_intervals(votes, random.Random(3), rounds=300)
    # The reference: resample the votes themselves and refit each, as the definition says.
    samples: dict[str, list[float]] = {}
    ref = random.Random(3)
    for _ in range(300):
        for model, strength in fit_strengths(ref.choices(votes, k=len(votes))).items():
            samples.setdefault(model, []).append(rating_of(strength))
    for model, (low, high) in batched.items():
        ordered = sorted(samples[model])
        assert low == pytest.approx(ordered[int(0.025 * 299)], abs=15)
        assert high == pytest.approx(ordered[int(0.975 * 299)], abs=15)
    full = fit_strengths(votes)
    assert all(low < rating_of(full[m]) < high for m, (low, high) in batched.items())


def test_the_votes_stamp_changes_with_every_vote_change_and_deletion(sessions):
    from core.compare import comparisons
    from tests.support.compare import add_round, answer, new_session, vote

    dana = caller(sessions, add_user(sessions, "dana", "member").id)
    with sessions() as s:
        empty = leaderboard.votes_stamp(s)
    assert empty == (0, 0, None)
    sid = new_session(sessions, dana, [GPT, MINI])
    rid = add_round(sessions, dana, sid, [answer(GPT), answer(MINI)])
    vote(sessions, dana, rid, "best", GPT, now=utc_now() - timedelta(minutes=5))
    with sessions() as s:
        first = leaderboard.votes_stamp(s)
    vote(sessions, dana, rid, "best", MINI)  # a changed mind replaces the vote
    with sessions() as s:
        changed = leaderboard.votes_stamp(s)
    with sessions.begin() as s:
        comparisons.delete_session(s, dana, sid, now=utc_now())
    with sessions() as s:
        deleted = leaderboard.votes_stamp(s)
    assert len({empty, first, changed}) == 3 and deleted[0] == 0 and deleted != first


def test_the_leaderboard_page_shows_a_new_vote_on_the_next_view(sessions):
    """Ratings are cached per votes_stamp: the view after a vote is refitted, at once."""
    from tests.support.pages import signed_in

    dana = add_user(sessions, "dana", "member")
    me = caller(sessions, dana.id)
    voted_rounds(sessions, me, [([GPT, MINI], "best", GPT)] * 2)
    at = signed_in("dana", "app_pages/leaderboard.py")
    votes = dict(zip(at.dataframe[0].value["model"], at.dataframe[0].value["votes"], strict=True))
    assert votes == {GPT: 2, MINI: 2}
    at.run()  # a view without a vote in between reads the cache: the same table
    assert list(at.dataframe[0].value["votes"]) == [2, 2]
    voted_rounds(sessions, me, [([MINI, HAIKU], "best", HAIKU)] * 3)
    at.run()
    table = at.dataframe[0].value
    votes = dict(zip(table["model"], table["votes"], strict=True))
    assert votes == {GPT: 2, MINI: 5, HAIKU: 3}
    assert table["model"].iloc[0] == HAIKU


def test_preferences_ratings_are_refitted_after_a_vote_and_cached_until_then(sessions):
    """The Model preferences page keeps team ratings per votes_stamp (ui.preferences_data)."""
    from ui.preferences_data import team_ratings

    dana = caller(sessions, add_user(sessions, "dana", "member").id)
    voted_rounds(sessions, dana, [([GPT, MINI], "best", GPT)] * 2, task="summarise")
    with sessions() as s:
        stamp = leaderboard.votes_stamp(s)
    before = team_ratings(None, stamp)
    assert set(before.for_task("summarise")) == {GPT, MINI}
    voted_rounds(sessions, dana, [([MINI, HAIKU], "best", HAIKU)] * 2, task="summarise")
    assert team_ratings(None, stamp) == before  # same stamp: the cached fit
    with sessions() as s:
        after = team_ratings(None, leaderboard.votes_stamp(s))
    assert set(after.for_task("summarise")) == {GPT, MINI, HAIKU}
