"""Synthetic usage for trying the dashboard and for benchmarks, clearly labelled.

Everything written is marked: users and teams are named ``demo-*``, every request has
``route_source = "demo"`` and ids starting ``demo``. Rows go through
``ledger.insert_rows``, the same path as real traffic, so the rollups match.

Distributions: each user has favourite models and tasks; traffic follows office hours
with quiet weekends; prompt and completion sizes are log-normal (a thin tail of very
long prompts); latency grows with output length per model; about 4% of requests fall
back, 2-3% fail (one provider has a bad day), and some are stopped, refused for rate
limits or fail for a missing key; one local model is unpriced.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import Conflict, InvalidInput
from core.money.catalog import Catalog
from core.store import ledger
from core.store.tables import Budget, PreferenceRefusal, RequestRow, Team, User

MARKER: Final = "demo"
TEAMS: Final = ("demo-research", "demo-support", "demo-platform", "demo-sales")
USERS_PER_TEAM: Final = 6
UNPRICED_MODEL: Final = "local/demo-llama-3-8b"
MODELS: Final = (  # (model id, relative speed: output tokens per second)
    ("openai/gpt-4o", 80),
    ("openai/gpt-4o-mini", 120),
    ("anthropic/claude-3-5-sonnet-20241022", 70),
    ("anthropic/claude-3-haiku-20240307", 150),
    ("gemini/gemini-2.0-flash", 160),
    ("mistral/mistral-large-latest", 60),
    ("deepseek/deepseek-chat", 50),
    (UNPRICED_MODEL, 40),
)
TASKS: Final = ("summarise", "code-review", "support-reply", "translate", "extract", "chat")
SOURCES: Final = (("chat", 6), ("api", 3), ("compare", 1))
NO_LOGIN_HASH: Final = "!demo-user-cannot-sign-in"
BATCH: Final = 20_000


@dataclass(frozen=True, slots=True)
class Persona:
    user_id: int
    username: str
    team_id: int
    models: tuple[str, ...]
    model_weights: tuple[float, ...]
    tasks: tuple[str, ...]
    task_weights: tuple[float, ...]
    source: str  # the usual source; the others are occasional


def real_usage(session: Session) -> int:
    """Requests that were not written by demo-data."""
    return (
        session.scalar(
            select(func.count()).select_from(RequestRow).where(RequestRow.route_source != MARKER)
        )
        or 0
    )


def _prices(catalog: Catalog) -> dict[str, tuple[int, int] | None]:
    """Nano-dollars per token for each demo model (exact for prices with <= 3 decimals)."""
    out: dict[str, tuple[int, int] | None] = {}
    for model, _ in MODELS:
        info = catalog.get(model)
        if info is None or info.input_price is None or info.output_price is None:
            out[model] = None
            continue
        nano_in, nano_out = info.input_price * 1000, info.output_price * 1000
        if nano_in != int(nano_in) or nano_out != int(nano_out):
            raise ValueError(f"price of {model} has more than 3 decimals")
        out[model] = (int(nano_in), int(nano_out))
    return out


def _cost(price: tuple[int, int] | None, prompt: int, completion: int) -> int | None:
    if price is None:
        return None
    nano = prompt * price[0] + completion * price[1]
    return (nano + 500) // 1000  # half-up to the micro-dollar, as core.money.pricing rounds


def ensure_people(session: Session, rng: random.Random, now: datetime) -> list[Persona]:
    """Demo teams and users (created once, reused on later runs); none of them can sign in."""
    people: list[Persona] = []
    for t_index, team_name in enumerate(TEAMS):
        team = session.scalar(select(Team).where(Team.name == team_name))
        if team is None:
            team = Team(name=team_name, created_at=now)
            session.add(team)
            session.flush()
        for u in range(USERS_PER_TEAM):
            name = f"{team_name}-{u + 1:02d}"
            user = session.scalar(select(User).where(User.username == name))
            if user is None:
                user = User(
                    username=name,
                    display_name=f"Demo user {t_index + 1}.{u + 1}",
                    email=None,
                    password_hash=NO_LOGIN_HASH,
                    role="manager" if u == 0 else "member",
                    team_id=team.id,
                    active=True,
                    created_at=now,
                )
                session.add(user)
                session.flush()
            models = tuple(m for m, _ in rng.sample(MODELS, 3))
            tasks = tuple(rng.sample(TASKS, 3))
            usual = rng.choices([s for s, _ in SOURCES], [w for _, w in SOURCES])[0]
            people.append(
                Persona(
                    user.id, name, team.id, models, (0.7, 0.2, 0.1), tasks, (0.6, 0.3, 0.1), usual
                )
            )
    return people


def _lognormal(rng: random.Random, median: float, sigma: float, cap: int) -> int:
    return max(1, min(cap, int(rng.lognormvariate(math.log(median), sigma))))


_HOUR_WEIGHTS: Final = tuple((6 if 9 <= h <= 17 else 2 if 7 <= h <= 20 else 0.4) for h in range(24))


@dataclass
class _Generator:
    rng: random.Random
    people: list[Persona]
    prices: dict[str, tuple[int, int] | None]
    bad_day: date
    bad_provider: str
    serial: int = 0

    def request(self, at: datetime) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        rng = self.rng
        person = rng.choice(self.people)
        model = rng.choices(person.models, person.model_weights)[0]
        task = rng.choices(person.tasks, person.task_weights)[0]
        source = person.source if rng.random() < 0.9 else rng.choice(SOURCES)[0]
        provider = model.split("/", 1)[0]
        prompt = _lognormal(rng, 900, 1.1, 190_000)
        completion = _lognormal(rng, 280, 0.8, 8_000)
        speed = dict(MODELS)[model]
        ttft = _lognormal(rng, 350 if speed > 100 else 600, 0.5, 20_000)
        latency = ttft + int(completion * 1000 / speed * rng.uniform(0.8, 1.3))
        error_rate = 0.25 if (at.date() == self.bad_day and provider == self.bad_provider) else 0.02
        roll = rng.random()
        status, fallback = "success", False
        served: str | None = model
        if roll < error_rate:
            status, served = "failed", None
        elif roll < error_rate + 0.04:
            status, fallback = "success-after-fallback", True
            served = rng.choice([m for m, _ in MODELS if m != model and m != UNPRICED_MODEL])
        elif roll < error_rate + 0.055:
            status = "stopped"
        elif roll < error_rate + 0.06:
            status, served = "no-key", None
        elif roll < error_rate + 0.065:
            status, served = "refused-rate-limit", None
        self.serial += 1
        rid = f"{MARKER}{int(at.timestamp() * 1000):012x}{self.serial:010x}"[:32]
        attempts: list[dict[str, Any]] = []
        if served is None:
            prompt_used, completion, latency_used, ttft_used = 0, 0, rng.randint(5, 3000), None
            cost = None
            if status == "failed":
                attempts.append(_attempt(rid, 1, at, model, "error", 503, latency_used))
        else:
            prompt_used, latency_used, ttft_used = prompt, latency, ttft
            if status == "stopped":
                completion //= 3
            cost = _cost(self.prices[served], prompt, completion)
            seq = 1
            if fallback:
                attempts.append(_attempt(rid, seq, at, model, "error", 500, rng.randint(200, 4000)))
                seq += 1
            attempts.append(
                _attempt(rid, seq, at, served, "ok", 200, latency, ttft, prompt, completion, cost)
            )
        row = {
            "id": rid,
            "at": at,
            "user_id": person.user_id,
            "username": person.username,
            "team_id": person.team_id,
            "source": source,
            "task": task,
            "profile": None,
            "conversation_id": None,
            "token_name": None,
            "requested_model": model,
            "served_model": served,
            "provider": served.split("/", 1)[0] if served else None,
            "route_source": MARKER,
            "chain": [model],
            "order_reason": None,
            "prompt_tokens": prompt_used,
            "completion_tokens": completion,
            "cached_tokens": 0,
            "reasoning_tokens": 0,
            "cost_micros": cost,
            "priced": cost is not None,
            "price_version": MARKER if cost is not None else None,
            "latency_ms": latency_used,
            "ttft_ms": ttft_used,
            "status": status,
            "fallback_used": fallback,
            "finish_reason": "stop" if served else None,
            "error_class": "AllModelsFailed"
            if status == "failed"
            else "NoKey"
            if status == "no-key"
            else None,
            "error_message": "Synthetic failure (demo data)." if served is None else None,
            "attempt_count": len(attempts),
            "request_metadata": None,
        }
        return row, attempts


def _attempt(
    rid: str,
    seq: int,
    at: datetime,
    model: str,
    outcome: str,
    code: int,
    latency: int,
    ttft: int | None = None,
    prompt: int = 0,
    completion: int = 0,
    cost: int | None = None,
) -> dict[str, Any]:
    return {
        "request_id": rid,
        "seq": seq,
        "at": at,
        "model": model,
        "provider": model.split("/", 1)[0],
        "key_source": "org",
        "outcome": outcome,
        "status_code": code,
        "error_class": None if outcome == "ok" else "UpstreamError",
        "error_message": None if outcome == "ok" else "Synthetic upstream error (demo data).",
        "latency_ms": latency,
        "ttft_ms": ttft,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "cost_micros": cost,
        "priced": cost is not None,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
        "price_version": MARKER if cost is not None else None,
    }


def _times(rng: random.Random, rows: int, days: int, now: datetime) -> Iterator[datetime]:
    """``rows`` request times over the ``days`` UTC days ending now, in time order."""
    first = (now - timedelta(days=days - 1)).date()
    day_weights = [
        (0.3 if (first + timedelta(days=d)).weekday() >= 5 else 1.0) for d in range(days)
    ]
    per_day = [0] * days
    for d in rng.choices(range(days), day_weights, k=rows):
        per_day[d] += 1
    hours = list(range(24))
    for d, n in enumerate(per_day):
        midnight = datetime.combine(first + timedelta(days=d), datetime.min.time(), tzinfo=UTC)
        stamps = sorted(
            midnight + timedelta(hours=h, seconds=rng.random() * 3600)
            for h in rng.choices(hours, _HOUR_WEIGHTS, k=n)
        )
        for at in stamps:
            yield min(at, now)


def generate(
    sessions: sessionmaker[Session],
    catalog: Catalog,
    *,
    rows: int,
    days: int,
    now: datetime,
    force: bool = False,
    seed: int = 7,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write ``rows`` synthetic requests over ``days`` days; returns the number written."""
    if rows < 1 or days < 1 or days > 3650:
        raise InvalidInput("--rows must be at least 1 and --days between 1 and 3650.")
    rng = random.Random(seed)
    with sessions.begin() as s:
        real = real_usage(s)
        if real and not force:
            raise Conflict(
                f"This database already holds {real:,} real requests; demo data would mix "
                "with them. Use another database (--db) or pass --force to add it anyway."
            )
        people = ensure_people(s, rng, now)
    providers = sorted({m.split("/", 1)[0] for m, _ in MODELS})
    gen = _Generator(
        rng,
        people,
        _prices(catalog),
        bad_day=(now - timedelta(days=min(days - 1, 3))).date(),
        bad_provider=rng.choice(providers),
    )
    written = 0
    requests: list[dict[str, Any]] = []
    attempts: list[dict[str, Any]] = []
    for at in _times(rng, rows, days, now):
        request, tries = gen.request(at)
        requests.append(request)
        attempts.extend(tries)
        if len(requests) >= BATCH:
            written += _flush(sessions, requests, attempts)
            requests, attempts = [], []
            if progress:
                progress(written, rows)
    written += _flush(sessions, requests, attempts)
    if progress:
        progress(written, rows)
    _budgets_and_refusals(sessions, people, now, rng)
    return written


def _flush(
    sessions: sessionmaker[Session], requests: list[dict[str, Any]], attempts: list[dict[str, Any]]
) -> int:
    if requests:
        with sessions.begin() as s:
            ledger.insert_rows(s, requests, attempts)
    return len(requests)


def _budgets_and_refusals(
    sessions: sessionmaker[Session], people: list[Persona], now: datetime, rng: random.Random
) -> None:
    """Team budgets set near this month's pace (so some alert), and a few refusals."""
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    period = now.strftime("%Y-%m")
    with sessions.begin() as s:
        spend = dict(
            s.execute(
                select(RequestRow.team_id, func.coalesce(func.sum(RequestRow.cost_micros), 0))
                .where(RequestRow.at >= month_start, RequestRow.route_source == MARKER)
                .group_by(RequestRow.team_id)
            ).all()
        )
        for i, team_id in enumerate(sorted({p.team_id for p in people})):
            spent = int(spend.get(team_id) or 0)
            factor = (Decimal("0.9"), Decimal("1.6"), Decimal("3"), Decimal("1.1"))[i % 4]
            limit = max(1_000_000, -(-int(spent * factor) // 1_000_000) * 1_000_000)
            row = s.scalar(
                select(Budget).where(Budget.scope == "team", Budget.scope_key == str(team_id))
            )
            if row is None:
                s.add(
                    Budget(
                        scope="team",
                        scope_key=str(team_id),
                        limit_micros=limit,
                        hard=i % 2 == 1,
                        period=period,
                        spent_micros=spent,
                        reserved_micros=0,
                        updated_at=now,
                    )
                )
        for person in rng.sample(people, 3):
            s.add(
                PreferenceRefusal(
                    at=now - timedelta(minutes=rng.randint(1, 600)),
                    user_id=person.user_id,
                    username=person.username,
                    provider="mistral",
                    reason="No usable mistral key (demo data).",
                )
            )
