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
