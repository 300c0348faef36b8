"""The recent-requests table: newest first, keyset-paginated on (at, id), never OFFSET."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.analytics.filters import Filters, request_terms, scope_request_terms
from core.analytics.scope import Scope
from core.store import ledger
from core.store.tables import RequestRow

Cursor = tuple[datetime, str]
COLUMNS = (
    "at",
    "id",
    "username",
    "task",
    "requested_model",
    "served_model",
    "prompt_tokens",
    "completion_tokens",
    "cost_micros",
    "latency_ms",
    "status",
    "estimated",  # the cost is an interrupted request's held worst case
)


@dataclass(frozen=True, slots=True)
class RequestsPage:
    rows: pd.DataFrame
    next_cursor: Cursor | None  # None: this is the last page


def recent_requests(
    session: Session,
    filters: Filters,
    scope: Scope,
    *,
    before: Cursor | None = None,
    limit: int = 50,
) -> RequestsPage:
    """One page of requests older than ``before`` (the last row of the previous page)."""
    r = RequestRow
    query = select(*(getattr(r, c) for c in COLUMNS)).where(*request_terms(filters, scope))
    if before is not None:
        at, rid = before
        # (at, id) < (at', id'), with the leading `at <=` so the at indexes range-scan.
        query = query.where(r.at <= at, or_(r.at < at, r.id < rid))
    rows = session.execute(query.order_by(r.at.desc(), r.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    frame = pd.DataFrame([tuple(row) for row in rows], columns=list(COLUMNS))
    cursor = (rows[-1][0], rows[-1][1]) if more and rows else None
    return RequestsPage(frame, cursor)


def attempts_of(session: Session, request_id: str, scope: Scope) -> list[dict[str, Any]]:
    """A request's attempts, only if the request is within the viewer's scope."""
    visible = session.scalar(
        select(RequestRow.id).where(RequestRow.id == request_id, *scope_request_terms(scope))
    )
    return ledger.attempts_for(session, request_id) if visible else []
