"""A recommended model per task, with its reason in plain words.

Inputs: the catalog (capabilities, context, price), recent ledger success rates
(core.store.ledger.recent_stats) and, once the team has voted in comparisons, ``ratings``:
model id -> normalised quality 0..1. Without ratings or history, a model's cost tier
stands in for quality (dearer models are usually stronger), and the reason says so.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from sqlalchemy.orm import Session

from core.compare import leaderboard
from core.money.catalog import ModelInfo
from core.store.ledger import ModelStats

MIN_CALLS_FOR_STATS: Final = 5
_TIER_PRIOR: Final[Mapping[str, float]] = {"high": 0.8, "medium": 0.65, "low": 0.5, "free": 0.4}


@dataclass(frozen=True)
class TaskNeeds:
    description: str
    quality_weight: float
    price_weight: float
    tools: bool = False
    min_context: int = 8_000
    min_output: int = 1_000


TASK_NEEDS: Final[Mapping[str, TaskNeeds]] = {
    "outline": TaskNeeds("short structured plans", 0.4, 0.6, min_context=16_000),
    "chapter": TaskNeeds("long-form writing", 0.7, 0.3, min_context=32_000, min_output=8_000),
    "dialogue": TaskNeeds("natural dialogue", 0.7, 0.3, min_context=16_000),
    "refine": TaskNeeds("careful editing", 0.7, 0.3, min_context=32_000, min_output=4_000),
    "code": TaskNeeds(
        "code with tool use", 0.75, 0.25, tools=True, min_context=64_000, min_output=4_000
    ),
    "translation": TaskNeeds(
        "faithful translation", 0.55, 0.45, min_context=16_000, min_output=4_000
    ),
    "chat": TaskNeeds("everyday chat", 0.4, 0.6),
}
_GENERIC: Final = TaskNeeds("general use", 0.5, 0.5)


@dataclass(frozen=True)
class Recommendation:
    task: str
    model: str
    score: float
    reason: str


def _blended(m: ModelInfo) -> Decimal | None:
    if m.input_price is None or m.output_price is None:
        return None
    return (3 * m.input_price + m.output_price) / 4


def _fits(m: ModelInfo, needs: TaskNeeds) -> bool:
    if not m.priced or not m.streaming or (needs.tools and not m.tools):
        return False
    if (m.context_window or 0) < needs.min_context:
        return False
    return (m.max_output_tokens or needs.min_output) >= needs.min_output


def _quality(
    m: ModelInfo, stats: Mapping[str, ModelStats], ratings: Mapping[str, float]
) -> tuple[float, list[str]]:
    parts: list[float] = []
    words: list[str] = []
    if m.id in ratings:
        rating = min(1.0, max(0.0, ratings[m.id]))
        parts.append(rating)
        words.append(f"the team rates it {rating:.0%}")
    st = stats.get(m.id)
    if st is not None and st.requests >= MIN_CALLS_FOR_STATS:
        parts.append(st.success_rate)
        words.append(f"{st.success_rate:.0%} of its last {st.requests} calls succeeded")
    if parts:
        return sum(parts) / len(parts), words
    return _TIER_PRIOR.get(m.cost_tier, 0.5), []


def recommend(
    task: str,
    models: Sequence[ModelInfo],
    *,
    stats: Mapping[str, ModelStats],
    ratings: Mapping[str, float] | None = None,
    providers: Collection[str] | None = None,
    limit: int = 1,
) -> list[Recommendation]:
    """The best ``limit`` models for ``task`` among ``providers`` (None: every provider)."""
    needs = TASK_NEEDS.get(task.strip().lower(), _GENERIC)
    ratings = ratings or {}
    # Free models are local ones (ollama): only when their provider is named explicitly.
    pool = [
        m
        for m in models
        if _fits(m, needs)
        and (m.provider in providers if providers is not None else m.cost_tier != "free")
    ]
    if not pool:
        return []
    # Prices span orders of magnitude; compare them on a log scale.
    logs = {m.id: math.log10(float(_blended(m) or 0) + 0.01) for m in pool}
    lo, hi = min(logs.values()), max(logs.values())
    scored: list[tuple[float, Decimal, str, Recommendation]] = []
    for m in pool:
        cheapness = 1.0 if math.isclose(hi, lo) else 1 - (logs[m.id] - lo) / (hi - lo)
        quality, evidence = _quality(m, stats, ratings)
        score = needs.quality_weight * quality + needs.price_weight * cheapness
        blended = _blended(m) or Decimal(0)
        reason = _reason(m, needs, blended, cheapness, evidence)
        scored.append((-score, blended, m.id, Recommendation(task, m.id, round(score, 3), reason)))
    scored.sort(key=lambda item: item[:3])
    return [item[3] for item in scored[:limit]]


def _reason(
    m: ModelInfo, needs: TaskNeeds, blended: Decimal, cheapness: float, evidence: list[str]
) -> str:
    fit = [f"{(m.context_window or 0) // 1000}k context"]
    if needs.tools:
        fit.append("tool use")
    price = f"${blended:.2f} per 1M tokens blended ({m.cost_tier} cost"
    price += ", one of the cheapest that fit)" if cheapness > 0.8 else ")"
    if evidence:
        why = "; ".join(evidence)
    else:
        why = "no team ratings or history yet, so judged by its price tier"
    return f"Good for {needs.description}: has {' and '.join(fit)}; {price}; {why}."


@dataclass(frozen=True)
class TeamRatings:
    """A team's comparison ratings: per task, and overall for tasks with no votes yet."""

    overall: Mapping[str, float]
    by_task: Mapping[str, Mapping[str, float]]

    def for_task(self, task: str) -> Mapping[str, float]:
        # The same fallback the gateway's cost-optimised ordering uses.
        return self.by_task.get(task.strip().lower()) or self.overall


def team_ratings(session: Session, team_id: int | None) -> TeamRatings:
    """The team's ratings from one read of its votes (None: every team's)."""
    overall, by_task = leaderboard.quality_by_task(session, team_id=team_id)
    return TeamRatings(overall, by_task)
