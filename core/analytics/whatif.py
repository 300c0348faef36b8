"""What-if repricing: what a period would have cost had some traffic gone to model Y.

The recorded prompt and completion tokens of the selected traffic (one task, one
model, or everything in the filters) are repriced at Y's current prices: exact Decimal
arithmetic, rounded half-up to the micro-dollar once per task. Cache and reasoning
discounts are not assumed for Y (its tokens are billed at the plain input and output
prices), so the figure is a ceiling. Requests whose prompt would not fit Y's context
window are counted per task; the rollups' largest prompt per row tells when that count
is zero without touching raw rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.analytics.filters import Filters, request_model, request_terms, rollup_terms
from core.analytics.scope import Scope
from core.errors import InvalidInput
from core.money.pricing import PriceBook
from core.store.tables import RequestRow, usage_daily


@dataclass(frozen=True, slots=True)
class WhatIfRow:
    task: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    current_micros: int  # recorded cost of the priced requests
    unpriced_requests: int  # recorded without a price: their current cost is unknown
    target_micros: int
    too_long: int  # requests whose prompt exceeds Y's context window

    @property
    def difference_micros(self) -> int:
        return self.target_micros - self.current_micros


@dataclass(frozen=True, slots=True)
class WhatIf:
    target: str
    rows: tuple[WhatIfRow, ...]
    context_window: int | None

    @property
    def current_micros(self) -> int:
        return sum(r.current_micros for r in self.rows)

    @property
    def target_micros(self) -> int:
        return sum(r.target_micros for r in self.rows)

    @property
    def difference_micros(self) -> int:
        return self.target_micros - self.current_micros

    @property
    def too_long(self) -> int:
        return sum(r.too_long for r in self.rows)

    @property
    def unpriced_requests(self) -> int:
        return sum(r.unpriced_requests for r in self.rows)


def reprice(
    prompt_tokens: int, completion_tokens: int, input_per_1m: Decimal, output_per_1m: Decimal
) -> int:
    """Micro-dollars for these tokens ($X per 1M tokens is X micro-dollars per token)."""
    with localcontext() as ctx:
        ctx.prec = 60
        total = prompt_tokens * input_per_1m + completion_tokens * output_per_1m
        return int(total.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def what_if(
    session: Session,
    filters: Filters,
    scope: Scope,
    *,
    target: str,
    book: PriceBook,
    now: datetime,
    task: str | None = None,
    source_model: str | None = None,
) -> WhatIf:
    """Reprice the traffic of ``task`` and/or ``source_model`` (None: all) at ``target``."""
    price = book.price_at(target, now)
    if price is None:
        raise InvalidInput(
            f"{target} has no known price, so nothing can be repriced at it. "
            "Pick a priced model, or have an admin set its price on Admin → Prices."
        )
    info = book.catalog.get(target)
    window = info.context_window if info else None
    c = usage_daily.c
    terms = rollup_terms(filters, scope)
    if task is not None:
        terms.append(c.task == task)
    if source_model is not None:
        terms.append(c.model == source_model)
    rows = session.execute(
        select(
            c.task,
            func.sum(c.requests),
            func.sum(c.prompt_tokens),
            func.sum(c.completion_tokens),
            func.sum(c.cost_micros),
            func.sum(c.unpriced_requests),
            func.max(c.max_prompt_tokens),
        )
        .where(*terms)
        .group_by(c.task)
        .order_by(c.task)
    ).all()
    long_tasks = [t for t, *_, biggest in rows if window is not None and biggest > window]
    too_long = _count_too_long(session, filters, scope, window, long_tasks, source_model)
    out = tuple(
        WhatIfRow(
            task=t,
            requests=int(n),
            prompt_tokens=int(p),
            completion_tokens=int(o),
            current_micros=int(cost),
            unpriced_requests=int(u),
            target_micros=reprice(int(p), int(o), price.input_per_1m, price.output_per_1m),
            too_long=too_long.get(t, 0),
        )
        for t, n, p, o, cost, u, _ in rows
    )
    return WhatIf(target, out, window)


def _count_too_long(
    session: Session,
    filters: Filters,
    scope: Scope,
    window: int | None,
    tasks: list[str],
    source_model: str | None,
) -> dict[str, int]:
    """Raw count of over-long prompts, only for tasks where the rollups say one exists."""
    if window is None or not tasks:
        return {}
    r = RequestRow
    terms = request_terms(filters, scope)
    terms += [r.task.in_(tasks), r.prompt_tokens > window]
    if source_model is not None:
        terms.append(request_model() == source_model)
    rows = session.execute(select(r.task, func.count()).where(*terms).group_by(r.task)).all()
    return {t: int(n) for t, n in rows}
