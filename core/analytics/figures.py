"""Key figures for a filtered period, and their change against the period before it.

One aggregate query over the rollups per period. Percentiles come from the summed
latency histograms (core/store/histogram.py), so they are approximate within one bucket.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from core.analytics.filters import Filters, rollup_terms
from core.analytics.scope import Scope
from core.request import STATUS_FAILED, STATUS_INTERRUPTED, STATUS_NO_KEY, STATUS_PARTIAL
from core.store import histogram
from core.store.rollups import SUCCESS_STATUSES
from core.store.tables import usage_daily

# Requests that went wrong for a technical reason; refusals by budget or rate limit are
# policy working as intended, and a stop is the caller's choice.
ERROR_STATUSES: Final = (STATUS_FAILED, STATUS_PARTIAL, STATUS_NO_KEY)


@dataclass(frozen=True, slots=True)
class KeyFigures:
    requests: int
    cost_micros: int  # priced requests only
    unpriced_requests: int
    prompt_tokens: int
    completion_tokens: int
    successes: int
    fallbacks: int
    errors: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    # Of cost_micros, what interrupted requests hold as an estimate (their worst case)
    # until a journal replay brings their real figures.
    estimated_micros: int = 0

    def _rate(self, part: int) -> float | None:
        return part / self.requests if self.requests else None

    @property
    def success_rate(self) -> float | None:
        return self._rate(self.successes)

    @property
    def fallback_rate(self) -> float | None:
        return self._rate(self.fallbacks)

    @property
    def error_rate(self) -> float | None:
        return self._rate(self.errors)


def status_sum(statuses: Sequence[str]) -> Any:
    c = usage_daily.c
    return func.coalesce(func.sum(case((c.status.in_(statuses), c.requests), else_=0)), 0)


def histogram_sums(columns: Sequence[str]) -> list[Any]:
    return [func.coalesce(func.sum(usage_daily.c[name]), 0) for name in columns]


def key_figures(session: Session, filters: Filters, scope: Scope) -> KeyFigures:
    c = usage_daily.c
    totals = [
        func.coalesce(func.sum(col), 0)
        for col in (
            c.requests,
            c.cost_micros,
            c.unpriced_requests,
            c.prompt_tokens,
            c.completion_tokens,
            c.fallbacks,
        )
    ]
    query = select(
        *totals,
        status_sum(SUCCESS_STATUSES),
        status_sum(ERROR_STATUSES),
        *histogram_sums(histogram.LATENCY_COLUMNS),
        *histogram_sums(histogram.TTFT_COLUMNS),
        func.coalesce(func.sum(case((c.status == STATUS_INTERRUPTED, c.cost_micros), else_=0)), 0),
    ).where(*rollup_terms(filters, scope))
    row = [int(v) for v in session.execute(query).one()]
    requests, cost, unpriced, prompt, completion, fallbacks, ok, errors = row[:8]
    latency = row[8 : 8 + histogram.BUCKETS]
    ttft = row[8 + histogram.BUCKETS : 8 + 2 * histogram.BUCKETS]
    return KeyFigures(
        requests=requests,
        cost_micros=cost,
        unpriced_requests=unpriced,
        prompt_tokens=prompt,
        completion_tokens=completion,
        successes=ok,
        fallbacks=fallbacks,
        errors=errors,
        latency_p50_ms=histogram.percentile(latency, 0.5),
        latency_p95_ms=histogram.percentile(latency, 0.95),
        ttft_p50_ms=histogram.percentile(ttft, 0.5),
        ttft_p95_ms=histogram.percentile(ttft, 0.95),
        estimated_micros=row[8 + 2 * histogram.BUCKETS],
    )


def change(current: float | None, previous: float | None) -> float | None:
    """Relative change (0.25 = +25 %); None when there is nothing to compare against."""
    if current is None or previous is None or previous == 0:
        return None
    return (current - previous) / previous
