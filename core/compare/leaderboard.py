"""Model ratings from comparison votes: win rate, Bradley–Terry ratings with bootstrap
confidence intervals, and the median cost and latency of the rated answers.

How a vote counts: "best" means the winner beat every other model of that round;
"tie" and "all bad" count as a draw between every pair (half a win each), as in
Chatbot Arena. Ratings are fitted by Hunter's MM algorithm with a weak prior (one
drawn game per model against an average opponent) so a model that always wins gets
a large but finite rating. Ratings use the Elo scale: 1000 is the average of the
rated models, +400 means ten-to-one odds. ``quality`` is the chance of beating an
average model (0..1), the share the gateway's cost-optimised ordering uses.
"""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from core.store.tables import CompareAnswer, CompareRound, CompareSession, CompareVote, Team

_Query = TypeVar("_Query", bound="Select[*tuple[Any, ...]]")

BASE_RATING = 1000.0
SCALE = 400.0
BOOTSTRAP_ROUNDS = 200
CI_LEVEL = 0.95


@dataclass(frozen=True)
class VoteRecord:
    """One vote on one round: which models were in it and what the voter chose."""

    round_id: int
    models: tuple[str, ...]
    choice: str  # best | tie | all_bad
    winner: str | None = None


def pair_outcomes(vote: VoteRecord) -> list[tuple[str, str, float]]:
    """(a, b, score of a against b) for every pair the vote says something about."""
    out: list[tuple[str, str, float]] = []
    models = vote.models
    if vote.choice == "best":
        if vote.winner not in models:
            return out
        out.extend((vote.winner, m, 1.0) for m in models if m != vote.winner)
    else:
        for i, a in enumerate(models):
            out.extend((a, b, 0.5) for b in models[i + 1 :])
    return out


def fit_strengths(
    votes: Iterable[VoteRecord], *, prior: float = 1.0, max_iter: int = 1000, tol: float = 1e-10
) -> dict[str, float]:
    """Bradley–Terry strengths (geometric mean 1), the maximum of the votes' likelihood
    with the prior: Newton's method when there is a prior, Hunter's MM updates without."""
    votes = list(votes)
    if prior > 0:
        models, wins, games, freq = _distinct_tables(votes)
        if not models:
            return {}
        theta = _newton(freq @ wins, np.tensordot(freq, games, axes=1), prior)
        return {m: math.exp(float(t)) for m, t in zip(models, theta, strict=True)}
    return _fit_mm(votes, max_iter=max_iter, tol=tol)


def _fit_mm(votes: Iterable[VoteRecord], *, max_iter: int, tol: float) -> dict[str, float]:
    """Hunter's MM updates without a prior (Newton's system is singular then)."""
    wins: dict[str, float] = defaultdict(float)
    games: dict[str, Counter[str]] = defaultdict(Counter)
    for vote in votes:
        for a, b, score in pair_outcomes(vote):
            wins[a] += score
            wins[b] += 1.0 - score
            games[a][b] += 1
            games[b][a] += 1
    models = sorted(games)
    if not models:
        return {}
    p = dict.fromkeys(models, 1.0)
    for _ in range(max_iter):
        new = {i: wins[i] / sum(n / (p[i] + p[j]) for j, n in games[i].items()) for i in models}
        change = max(abs(math.log(new[m] / p[m])) for m in models if new[m] > 0)
        p = {m: max(v, 1e-300) for m, v in new.items()}
        if change < tol:
            break
    centre = math.exp(sum(math.log(v) for v in p.values()) / len(p))
    return {m: v / centre for m, v in p.items()}


def _newton(
    wins: npt.NDArray[np.float64],
    games: npt.NDArray[np.float64],
    prior: float,
    *,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> npt.NDArray[np.float64]:
    """Log-strengths maximising the likelihood, centred on the models that played.

    Batched: ``wins`` is (..., models) and ``games`` (..., models, models), so every
    bootstrap resample is solved at once. The prior (one drawn game against a virtual
    opponent of strength 1) keeps the Hessian negative definite, so Newton's steps
    converge in a handful of iterations where MM needed a thousand.
    """
    theta = np.zeros_like(wins)
    diag = np.arange(wins.shape[-1])
    for _ in range(max_iter):
        p = np.exp(theta)
        beats = p[..., :, None] / (p[..., :, None] + p[..., None, :])  # P(i beats j)
        virtual = p / (p + 1.0)
        grad = wins + prior / 2 - (games * beats).sum(-1) - prior * virtual
        hess = games * beats * np.swapaxes(beats, -1, -2)
        hess[..., diag, diag] = -hess.sum(-1) - prior * virtual * (1 - virtual)
        step = np.clip(np.linalg.solve(hess, grad[..., None])[..., 0], -2.0, 2.0)
        theta = theta - step
        if float(np.abs(step).max()) < tol:
            break
    played = games.sum(-1) > 0
    centre = np.where(played, theta, 0.0).sum(-1) / np.maximum(played.sum(-1), 1)
    result: npt.NDArray[np.float64] = theta - centre[..., None]
    return result


def rating_of(strength: float) -> float:
    return BASE_RATING + SCALE * math.log10(strength)


def quality_of(strength: float) -> float:
    """Chance of beating an average model (strength 1): 0..1, 0.5 is average."""
    return strength / (strength + 1.0)


def _percentile(ordered: Sequence[float], q: float) -> float:
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def bootstrap_intervals(
    votes: Sequence[VoteRecord],
    rng: random.Random,
    *,
    rounds: int = BOOTSTRAP_ROUNDS,
    level: float = CI_LEVEL,
    prior: float = 1.0,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of each model's rating over votes resampled with replacement.

    All resamples are fitted at once: a resample is how often each distinct vote was
    drawn (multinomial, as drawing the votes with replacement), and every resample's
    fit is solved at once with numpy. Refitting each resample vote by vote in Python
    took 15 s for 600 votes; this takes milliseconds.
    """
    if not votes:
        return {}
    models, wins, games, freq = _distinct_tables(votes)
    if not models:
        return {}
    draws = (
        np.random.default_rng(rng.getrandbits(64))
        .multinomial(len(votes), freq / freq.sum(), size=rounds)
        .astype(np.float64)
    )  # (rounds, distinct votes)
    played = np.tensordot(draws, games, axes=1)
    theta = _newton(draws @ wins, played, prior)
    present = played.sum(-1) > 0
    ratings = BASE_RATING + SCALE * theta / math.log(10)
    tail = (1 - level) / 2
    out: dict[str, tuple[float, float]] = {}
    for i, model in enumerate(models):
        values = sorted(float(v) for v in ratings[present[:, i], i])
        if values:
            out[model] = (_percentile(values, tail), _percentile(values, 1 - tail))
    return out


def _distinct_tables(
    votes: Sequence[VoteRecord],
) -> tuple[list[str], npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(models, wins per distinct vote, games per distinct vote, how often each occurs)."""
    counts = Counter((v.models, v.choice, v.winner) for v in votes)
    distinct = [
        (VoteRecord(0, models, choice, winner), n) for (models, choice, winner), n in counts.items()
    ]
    models = sorted({m for vote, _ in distinct for a, b, _ in pair_outcomes(vote) for m in (a, b)})
    index = {m: i for i, m in enumerate(models)}
    wins = np.zeros((len(distinct), len(models)))
    games = np.zeros((len(distinct), len(models), len(models)))
    for k, (vote, _) in enumerate(distinct):
        for a, b, score in pair_outcomes(vote):
            i, j = index[a], index[b]
            wins[k, i] += score
            wins[k, j] += 1.0 - score
            games[k, i, j] += 1
            games[k, j, i] += 1
    freq = np.array([n for _, n in distinct], dtype=np.float64)
    return models, wins, games, freq


def win_counts(votes: Iterable[VoteRecord]) -> dict[str, tuple[int, int]]:
    """model -> (rounds voted best, rounds voted on that it was part of)."""
    wins: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    for vote in votes:
        seen.update(vote.models)
        if vote.choice == "best" and vote.winner in vote.models:
            wins[vote.winner] += 1
    return {m: (wins[m], seen[m]) for m in seen}


# --- reading votes ---------------------------------------------------------------------


def _filtered(
    query: _Query,
    task: str | None,
    team_id: int | None,
    since: datetime | None,
    until: datetime | None,
) -> _Query:
    query = (
        query.select_from(CompareVote)
        .join(CompareRound, CompareRound.id == CompareVote.round_id)
        .join(CompareSession, CompareSession.id == CompareRound.session_id)
    )
    if task is not None:
        query = query.where(CompareSession.task == task.strip().lower())
    if team_id is not None:
        query = query.where(CompareVote.team_id == team_id)
    if since is not None:
        query = query.where(CompareVote.at >= since)
    if until is not None:
        query = query.where(CompareVote.at < until)
    return query


def load_votes(
    session: Session,
    *,
    task: str | None = None,
    team_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[VoteRecord]:
    """Votes matching the filters (task None: every task; team None: every team)."""
    query = _filtered(
        select(CompareVote.round_id, CompareRound.labels, CompareVote.choice, CompareVote.winner),
        task,
        team_id,
        since,
        until,
    ).order_by(CompareVote.id)
    return [
        VoteRecord(round_id, tuple(labels[k] for k in sorted(labels)), choice, winner)
        for round_id, labels, choice, winner in session.execute(query)
    ]


def quality_scores(
    session: Session,
    *,
    task: str | None = None,
    team_id: int | None = None,
    since: datetime | None = None,
) -> dict[str, float]:
    """model id -> quality 0..1 (chance of beating an average rated model); {} with no votes."""
    strengths = fit_strengths(load_votes(session, task=task, team_id=team_id, since=since))
    return {m: quality_of(s) for m, s in strengths.items()}


def quality_by_task(
    session: Session, *, team_id: int | None = None
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """(overall quality, task -> quality) from one read of the votes."""
    query = _filtered(
        select(
            CompareSession.task,
            CompareVote.round_id,
            CompareRound.labels,
            CompareVote.choice,
            CompareVote.winner,
        ),
        None,
        team_id,
        None,
        None,
    ).order_by(CompareVote.id)
    by_task: dict[str, list[VoteRecord]] = defaultdict(list)
    for task, round_id, labels, choice, winner in session.execute(query):
        by_task[task].append(
            VoteRecord(round_id, tuple(labels[k] for k in sorted(labels)), choice, winner)
        )

    def scores(votes: list[VoteRecord]) -> dict[str, float]:
        return {m: quality_of(s) for m, s in fit_strengths(votes).items()}

    overall = scores([v for votes in by_task.values() for v in votes])
    return overall, {task: scores(votes) for task, votes in by_task.items()}


def votes_stamp(session: Session) -> tuple[int, int, datetime | None]:
    """(votes, last vote id, last vote time): changes whenever a vote is cast, changed
    (a new vote replaces the old one's choice and time) or deleted with its comparison.
    Caches of ratings are keyed by it, so they are refitted once per vote, not per view."""
    count, last_id, last_at = session.execute(
        select(func.count(), func.max(CompareVote.id), func.max(CompareVote.at))
    ).one()
    return int(count), int(last_id or 0), last_at


def vote_tasks(session: Session) -> list[str]:
    """Tasks that have at least one vote ("" is the no-task bucket)."""
    query = _filtered(select(CompareSession.task).distinct(), None, None, None, None)
    return sorted(t for (t,) in session.execute(query))


def teams(session: Session) -> list[tuple[int, str]]:
    return [(t.id, t.name) for t in session.scalars(select(Team).order_by(Team.name))]


# --- the table -------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaderRow:
    model: str
    rating: float
    ci_low: float
    ci_high: float
    quality: float
    wins: int
    votes: int  # votes on rounds the model was part of
    median_cost_micros: int | None  # per answer; None when unpriced or no answer
    priced: bool
    median_latency_ms: int | None

    @property
    def win_rate(self) -> float:
        return self.wins / self.votes if self.votes else 0.0

    @property
    def quality_per_dollar(self) -> float | None:
        """Quality per dollar spent on one answer; None when unpriced or free."""
        if not self.priced or not self.median_cost_micros:
            return None
        return self.quality / (self.median_cost_micros / 1_000_000)


@dataclass(frozen=True)
class AnswerFacts:
    costs: list[int]
    latencies: list[int]
    unpriced: bool


def _answer_facts(
    session: Session,
    task: str | None,
    team_id: int | None,
    since: datetime | None,
    until: datetime | None,
) -> dict[str, AnswerFacts]:
    voted = _filtered(select(CompareVote.round_id).distinct(), task, team_id, since, until)
    rows = session.execute(
        select(
            CompareAnswer.model,
            CompareAnswer.cost_micros,
            CompareAnswer.priced,
            CompareAnswer.latency_ms,
            CompareAnswer.status,
            CompareAnswer.error,
        ).where(CompareAnswer.round_id.in_(voted.scalar_subquery()))
    ).all()
    facts: dict[str, AnswerFacts] = defaultdict(lambda: AnswerFacts([], [], False))
    for model, cost, priced, latency, status, error in rows:
        if error is not None or not str(status).startswith("success"):
            continue  # a failure's cost and latency say nothing about the answer's
        found = facts[model]
        found.latencies.append(latency)
        if cost is None or not priced:
            facts[model] = AnswerFacts(found.costs, found.latencies, True)
        else:
            found.costs.append(cost)
    return dict(facts)


def leaderboard(
    session: Session,
    *,
    task: str | None = None,
    team_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    rng: random.Random | None = None,
    bootstrap_rounds: int = BOOTSTRAP_ROUNDS,
) -> list[LeaderRow]:
    """Every voted model, best rating first. ``rng`` seeds the bootstrap (default seed 0,
    so the same votes always give the same intervals)."""
    votes = load_votes(session, task=task, team_id=team_id, since=since, until=until)
    return rows_from_votes(
        votes,
        _answer_facts(session, task, team_id, since, until),
        rng=rng or random.Random(0),
        bootstrap_rounds=bootstrap_rounds,
    )


def rows_from_votes(
    votes: Sequence[VoteRecord],
    facts: Mapping[str, AnswerFacts] | None = None,
    *,
    rng: random.Random,
    bootstrap_rounds: int = BOOTSTRAP_ROUNDS,
) -> list[LeaderRow]:
    facts = facts or {}
    strengths = fit_strengths(votes)
    intervals = bootstrap_intervals(votes, rng, rounds=bootstrap_rounds)
    counts = win_counts(votes)
    rows = []
    for model, strength in strengths.items():
        rating = rating_of(strength)
        low, high = intervals.get(model, (rating, rating))
        found = facts.get(model)
        costs = found.costs if found else []
        priced = not (found and found.unpriced)
        latencies = found.latencies if found else []
        wins, seen = counts.get(model, (0, 0))
        rows.append(
            LeaderRow(
                model=model,
                rating=rating,
                ci_low=low,
                ci_high=high,
                quality=quality_of(strength),
                wins=wins,
                votes=seen,
                median_cost_micros=int(statistics.median_low(costs)) if priced and costs else None,
                priced=priced,
                median_latency_ms=int(statistics.median_low(latencies)) if latencies else None,
            )
        )
    return sorted(rows, key=lambda r: (-r.rating, r.model))
