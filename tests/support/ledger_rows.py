"""Ledger rows for analytics tests: plain dicts in the shape ledger.insert_rows writes."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.store import ledger

_ids = itertools.count(1)


def request_row(at: datetime, **kw: Any) -> dict[str, Any]:
    """A successful request by user 1 of team 1 unless ``kw`` says otherwise."""
    row: dict[str, Any] = {
        "id": f"r{next(_ids):08d}",
        "at": at,
        "user_id": 1,
        "username": "alice",
        "team_id": 1,
        "source": "chat",
        "task": "summarise",
        "profile": None,
        "conversation_id": None,
        "token_name": None,
        "requested_model": "openai/gpt-4o",
        "served_model": "openai/gpt-4o",
        "provider": "openai",
        "route_source": "org",
        "chain": ["openai/gpt-4o"],
        "order_reason": None,
        "prompt_tokens": 100,
        "completion_tokens": 50,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
        "cost_micros": 1000,
        "priced": True,
        "price_version": "test",
        "latency_ms": 500,
        "ttft_ms": 100,
        "status": "success",
        "fallback_used": False,
        "finish_reason": "stop",
        "error_class": None,
        "error_message": None,
        "attempt_count": 1,
        "request_metadata": None,
    }
    row.update(kw)
    if row["cost_micros"] is None:
        row["priced"] = False
    return row


def attempt_row(request: dict[str, Any], seq: int = 1, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "request_id": request["id"],
        "seq": seq,
        "at": request["at"],
        "model": request["served_model"] or request["requested_model"],
        "provider": request["provider"] or "openai",
        "key_source": "org",
        "outcome": "ok",
        "status_code": 200,
        "error_class": None,
        "error_message": None,
        "latency_ms": request["latency_ms"],
        "ttft_ms": request["ttft_ms"],
        "prompt_tokens": request["prompt_tokens"],
        "completion_tokens": request["completion_tokens"],
        "cost_micros": request["cost_micros"],
        "priced": request["priced"],
        "cached_tokens": request["cached_tokens"],
        "reasoning_tokens": request["reasoning_tokens"],
        "price_version": request["price_version"] if request["priced"] else None,
    }
    row.update(kw)
    return row


def insert(sessions: sessionmaker[Session], *rows: dict[str, Any], attempts: bool = True) -> None:
    with sessions.begin() as s:
        ledger.insert_rows(s, list(rows), [attempt_row(r) for r in rows] if attempts else [])


STATUSES = (
    "success",
    "success",
    "success",
    "success-after-fallback",
    "failed",
    "partial",
    "stopped",
    "no-key",
    "refused-budget",
)


def random_rows(rng: random.Random, n: int, start: datetime, days: int) -> list[dict[str, Any]]:
    """Varied rows: NULL users, teams and providers, unpriced, no TTFT, day boundaries."""
    rows = []
    for _ in range(n):
        at = start + timedelta(seconds=rng.randrange(days * 86400))
        if rng.random() < 0.05:  # right at midnight, either side
            at = at.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
                microseconds=rng.choice((0, 1))
            )
        status = rng.choice(STATUSES)
        served = (
            None
            if status in ("failed", "no-key", "refused-budget")
            else rng.choice(("openai/gpt-4o", "anthropic/claude-3-haiku-20240307", "local/x"))
        )
        cost = (
            None if served in (None, "local/x") or rng.random() < 0.05 else rng.randrange(0, 50_000)
        )
        rows.append(
            request_row(
                at.astimezone(UTC),
                user_id=rng.choice((1, 2, 3, None)),
                username=rng.choice(("alice", "bob", "carol")),
                team_id=rng.choice((1, 2, None)),
                source=rng.choice(("chat", "api", "compare")),
                task=rng.choice(("", "summarise", "code")),
                requested_model=rng.choice(("auto", "openai/gpt-4o")),
                served_model=served,
                provider=served.split("/")[0] if served else None,
                prompt_tokens=rng.randrange(0, 200_000),
                completion_tokens=rng.randrange(0, 4000),
                cost_micros=cost,
                latency_ms=rng.choice((0, 5, rng.randrange(0, 400_000))),
                ttft_ms=rng.choice((None, rng.randrange(0, 5000))),
                fallback_used=status == "success-after-fallback" or rng.random() < 0.02,
                status=status,
            )
        )
    return rows
