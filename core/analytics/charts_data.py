"""Data behind the analytics charts: small DataFrames aggregated in SQL.

Everything daily reads the rollups. The hourly cost view reads raw requests, so it is
limited to :data:`MAX_HOURLY_DAYS` days, a range the ``at`` indexes bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.analytics.figures import ERROR_STATUSES, histogram_sums, status_sum
from core.analytics.filters import Filters, request_terms, rollup_terms
from core.analytics.scope import Scope
from core.request import MICROS_PER_USD
from core.store import histogram
from core.store.rollups import SUCCESS_STATUSES
from core.store.tables import RequestRow, Team, User, usage_daily

MAX_HOURLY_DAYS: Final = 14
SPIKE_MIN_REQUESTS: Final = 20
SPIKE_FACTOR: Final = 2.0
SPIKE_MIN_EXTRA: Final = 0.05  # a spike is at least 5 points above the baseline
_C = usage_daily.c
_MICROS: Final = int(MICROS_PER_USD)


def _usd(micros: Any) -> float:
    """Dollars as a float, for chart axes only; tables and exports use exact strings."""
    return int(micros) / _MICROS


def cost_over_time(
    session: Session,
    filters: Filters,
    scope: Scope,
    by: Literal["provider", "model"] = "provider",
    grain: Literal["day", "hour"] = "day",
) -> pd.DataFrame:
    """Columns: period (datetime), series, cost_usd, requests."""
    if grain == "hour":
        if filters.days > MAX_HOURLY_DAYS:
            raise ValueError(f"hourly view is limited to {MAX_HOURLY_DAYS} days")
        return _hourly_cost(session, filters, scope, by)
    series = _C.provider if by == "provider" else _C.model
    rows = session.execute(
        select(_C.day, series, func.sum(_C.cost_micros), func.sum(_C.requests))
        .where(*rollup_terms(filters, scope))
        .group_by(_C.day, series)
        .order_by(_C.day)
    ).all()
    frame = pd.DataFrame(
        [(pd.Timestamp(d), s or "(none)", _usd(c), int(n)) for d, s, c, n in rows],
        columns=["period", "series", "cost_usd", "requests"],
    )
    return frame


def _hourly_cost(session: Session, filters: Filters, scope: Scope, by: str) -> pd.DataFrame:
    r = RequestRow
    dialect = session.get_bind().dialect.name
    hour: Any
    if dialect == "postgresql":
        hour = func.date_trunc("hour", r.at)
    else:
        hour = func.strftime("%Y-%m-%d %H:00:00", r.at)
    series = r.provider if by == "provider" else func.coalesce(r.served_model, r.requested_model)
    rows = session.execute(
        select(hour, series, func.coalesce(func.sum(r.cost_micros), 0), func.count())
        .where(*request_terms(filters, scope))
        .group_by(hour, series)
        .order_by(hour)
    ).all()
    return pd.DataFrame(
        [(pd.Timestamp(h), s or "(none)", _usd(c), int(n)) for h, s, c, n in rows],
        columns=["period", "series", "cost_usd", "requests"],
    )


def tokens_by_provider(session: Session, filters: Filters, scope: Scope) -> pd.DataFrame:
    """Columns: provider, prompt_tokens, completion_tokens, tokens."""
    rows = session.execute(
        select(_C.provider, func.sum(_C.prompt_tokens), func.sum(_C.completion_tokens))
        .where(*rollup_terms(filters, scope))
        .group_by(_C.provider)
    ).all()
    frame = pd.DataFrame(
        [(p or "(none)", int(a), int(b)) for p, a, b in rows],
        columns=["provider", "prompt_tokens", "completion_tokens"],
    )
    frame["tokens"] = frame["prompt_tokens"] + frame["completion_tokens"]
    return frame.sort_values("tokens", ascending=False, ignore_index=True)


def cost_by(
    session: Session, filters: Filters, scope: Scope, dimension: Literal["task", "user", "team"]
) -> pd.DataFrame:
    """Columns: name, requests, tokens, cost_micros, cost_usd, unpriced_requests; by cost."""
    column = {"task": _C.task, "user": _C.user_id, "team": _C.team_id}[dimension]
    rows = session.execute(
        select(
            column,
            func.sum(_C.requests),
            func.sum(_C.prompt_tokens + _C.completion_tokens),
            func.sum(_C.cost_micros),
            func.sum(_C.unpriced_requests),
        )
        .where(*rollup_terms(filters, scope))
        .group_by(column)
    ).all()
    names = _names(session, dimension, [r[0] for r in rows])
    frame = pd.DataFrame(
        [
            (names.get(key, str(key)), int(n), int(t), int(c), _usd(c), int(u))
            for key, n, t, c, u in rows
        ],
        columns=["name", "requests", "tokens", "cost_micros", "cost_usd", "unpriced_requests"],
    )
    return frame.sort_values(["cost_micros", "requests"], ascending=False, ignore_index=True)


def _names(session: Session, dimension: str, keys: list[Any]) -> dict[Any, str]:
    if dimension == "task":
        return {k: k or "(no task)" for k in keys}
    ids = [int(k) for k in keys if k]
    if dimension == "user":
        found = dict(session.execute(select(User.id, User.username).where(User.id.in_(ids))).all())
        return {k: found.get(k, f"user #{k}" if k else "(no user)") for k in keys}
    found = dict(session.execute(select(Team.id, Team.name).where(Team.id.in_(ids))).all())
    return {k: found.get(k, f"team #{k}" if k else "(no team)") for k in keys}


def latency_histograms(session: Session, filters: Filters, scope: Scope) -> pd.DataFrame:
    """Latency distribution of successful requests per model.

    Columns: model, bucket, low_ms, high_ms, count (empty buckets left out).
    """
    rows = session.execute(
        select(_C.model, *histogram_sums(histogram.LATENCY_COLUMNS))
        .where(*rollup_terms(filters, scope))
        .group_by(_C.model)
    ).all()
    out = []
    for model, *counts in rows:
        for i, n in enumerate(counts):
            if n:
                low, high = histogram.bounds(i)
                out.append((model, i, low, high, int(n)))
    return pd.DataFrame(out, columns=["model", "bucket", "low_ms", "high_ms", "count"])


def rates_over_time(session: Session, filters: Filters, scope: Scope) -> pd.DataFrame:
    """Daily fallback and error rates. Columns: day, requests, fallback_rate, error_rate."""
    rows = session.execute(
        select(_C.day, func.sum(_C.requests), func.sum(_C.fallbacks), status_sum(ERROR_STATUSES))
        .where(*rollup_terms(filters, scope))
        .group_by(_C.day)
        .order_by(_C.day)
    ).all()
    return pd.DataFrame(
        [(pd.Timestamp(d), int(n), int(f) / int(n), int(e) / int(n)) for d, n, f, e in rows if n],
        columns=["day", "requests", "fallback_rate", "error_rate"],
    )


def provider_error_spikes(session: Session, filters: Filters, scope: Scope) -> pd.DataFrame:
    """Provider-days whose error rate jumps against the provider's rate over the period.

    A spike: at least :data:`SPIKE_MIN_REQUESTS` requests that day, and an error rate of
    at least twice the baseline and 5 points above it. Columns: day, provider, requests,
    errors, error_rate, baseline.
    """
    rows = session.execute(
        select(_C.day, _C.provider, func.sum(_C.requests), status_sum(ERROR_STATUSES))
        .where(*rollup_terms(filters, scope), _C.provider != "")
        .group_by(_C.day, _C.provider)
    ).all()
    frame = pd.DataFrame(
        [(pd.Timestamp(d), p, int(n), int(e)) for d, p, n, e in rows],
        columns=["day", "provider", "requests", "errors"],
    )
    if frame.empty:
        return frame.assign(error_rate=[], baseline=[])
    totals = frame.groupby("provider")[["requests", "errors"]].sum()
    baseline = (totals["errors"] / totals["requests"]).rename("baseline")
    frame = frame.join(baseline, on="provider")
    frame["error_rate"] = frame["errors"] / frame["requests"]
    spikes = frame[
        (frame["requests"] >= SPIKE_MIN_REQUESTS)
        & (frame["error_rate"] >= SPIKE_FACTOR * frame["baseline"])
        & (frame["error_rate"] >= frame["baseline"] + SPIKE_MIN_EXTRA)
    ]
    return spikes[["day", "provider", "requests", "errors", "error_rate", "baseline"]].reset_index(
        drop=True
    )


def model_performance(
    session: Session, filters: Filters, scope: Scope, ratings: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """Per provider, model and task: requests, success rate, latency, TTFT, cost per 1K tokens.

    ``sample_size`` is the number of successful requests the latency figures rest on.
    A ``rating`` column (average comparison vote per model id) is added when given.
    """
    lat = histogram_sums(histogram.LATENCY_COLUMNS)
    rows = session.execute(
        select(
            _C.provider,
            _C.model,
            _C.task,
            func.sum(_C.requests),
            status_sum(SUCCESS_STATUSES),
            func.sum(_C.latency_sum_ms),
            func.sum(_C.latency_n),
            func.sum(_C.ttft_sum_ms),
            func.sum(_C.ttft_n),
            func.sum(_C.cost_micros),
            func.sum(_C.priced_tokens),
            *lat,
        )
        .where(*rollup_terms(filters, scope))
        .group_by(_C.provider, _C.model, _C.task)
    ).all()
    out = []
    for provider, model, task, n, ok, lsum, ln, tsum, tn, cost, ptok, *counts in rows:
        n, ok, ln, tn, ptok = int(n), int(ok), int(ln), int(tn), int(ptok)
        out.append(
            {
                "provider": provider or "(none)",
                "model": model,
                "task": task or "(no task)",
                "requests": n,
                "success_rate": ok / n if n else None,
                "avg_latency_ms": int(lsum) / ln if ln else None,
                "p95_latency_ms": histogram.percentile([int(c) for c in counts], 0.95),
                "avg_ttft_ms": int(tsum) / tn if tn else None,
                # Dollars per 1K tokens over priced requests; None when nothing was priced.
                "cost_per_1k_usd": (int(cost) / _MICROS) / (ptok / 1000) if ptok else None,
                "sample_size": ln,
            }
        )
    columns = [
        "provider",
        "model",
        "task",
        "requests",
        "success_rate",
        "avg_latency_ms",
        "p95_latency_ms",
        "avg_ttft_ms",
        "cost_per_1k_usd",
        "sample_size",
    ]
    frame = pd.DataFrame(out, columns=columns)
    if ratings is not None:
        frame.insert(len(columns) - 1, "rating", [ratings.get(m) for m in frame["model"]])
    return frame.sort_values("requests", ascending=False, ignore_index=True)


def hourly_allowed(filters: Filters) -> bool:
    return filters.days <= MAX_HOURLY_DAYS
