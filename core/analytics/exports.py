"""CSV exports of the filtered requests (for billing) and of cost per user and team.

Requests stream in keyset order on (at, id), a batch at a time, so an export never
holds the ledger in memory and never pays for OFFSET. The page and
`switchboard usage export` write the same columns.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, Literal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.analytics.charts_data import cost_by
from core.analytics.filters import Filters, request_terms
from core.analytics.scope import Scope
from core.request import micros_to_usd
from core.store.tables import RequestRow

_MICRO = Decimal("0.000001")
_REQ = RequestRow.__table__

# (output column, ledger column); the order is the CSV header and the JSON key order.
EXPORT_COLUMNS: Final = (
    ("time", "at"),
    ("request_id", "id"),
    ("user", "username"),
    ("team_id", "team_id"),
    ("source", "source"),
    ("task", "task"),
    ("requested_model", "requested_model"),
    ("served_model", "served_model"),
    ("provider", "provider"),
    ("prompt_tokens", "prompt_tokens"),
    ("completion_tokens", "completion_tokens"),
    ("cached_tokens", "cached_tokens"),
    ("reasoning_tokens", "reasoning_tokens"),
    ("cost_usd", "cost_micros"),
    ("priced", "priced"),
    ("price_version", "price_version"),
    ("latency_ms", "latency_ms"),
    ("ttft_ms", "ttft_ms"),
    ("status", "status"),
    ("fallback_used", "fallback_used"),
    ("error_class", "error_class"),
    ("metadata", "request_metadata"),  # last, so older CSV readers keep their columns
)
SUMMARY_COLUMNS: Final = ("kind", "name", "requests", "tokens", "cost_usd", "unpriced_requests")


def cost_string(micros: int | None) -> str | None:
    """Exact dollars with micro-dollar scale ("0.001234"); None when unpriced."""
    if micros is None:
        return None
    return f"{micros_to_usd(micros).quantize(_MICRO):f}"


def iso_utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def export_record(row: dict[str, Any]) -> dict[str, Any]:
    """One ledger row as an export object: ISO time, cost as an exact string."""
    out = {name: row[column] for name, column in EXPORT_COLUMNS}
    out["time"] = iso_utc(row["at"])
    out["cost_usd"] = cost_string(row["cost_micros"])
    out["priced"] = bool(row["priced"])
    out["fallback_used"] = bool(row["fallback_used"])
    return out


def csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict):  # request metadata: one JSON cell, as the JSON export has it
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, bool):  # lowercase like the JSON, so both exports agree
        return "true" if value else "false"
    return value


def iter_filtered_requests(
    session: Session, filters: Filters, scope: Scope, batch: int = 2000
) -> Iterator[dict[str, Any]]:
    """Every request the filters and scope select, oldest first, ``batch`` rows per query."""
    base = select(_REQ).where(*request_terms(filters, scope))
    base = base.order_by(RequestRow.at, RequestRow.id).limit(batch)
    cursor: tuple[datetime, str] | None = None
    while True:
        query = base
        if cursor is not None:
            at, rid = cursor
            query = query.where(RequestRow.at >= at, or_(RequestRow.at > at, RequestRow.id > rid))
        rows = [dict(row) for row in session.execute(query).mappings()]
        yield from rows
        if len(rows) < batch:
            return
        cursor = (rows[-1]["at"], rows[-1]["id"])


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """CSV text one line at a time (quoting done by the csv module)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(header))
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([csv_cell(v) for v in row])
        yield buffer.getvalue()


def requests_csv(session: Session, filters: Filters, scope: Scope) -> Iterator[str]:
    records = (export_record(r) for r in iter_filtered_requests(session, filters, scope))
    return csv_lines((name for name, _ in EXPORT_COLUMNS), (record.values() for record in records))


def summary_rows(session: Session, filters: Filters, scope: Scope) -> list[list[Any]]:
    """Per-user then per-team cost (from the rollups), exact dollars."""
    rows: list[list[Any]] = []
    kind: Literal["user", "team"]
    for kind in ("user", "team"):
        frame = cost_by(session, filters, scope, kind)
        for rec in frame.itertuples(index=False):
            rows.append(
                [
                    kind,
                    rec.name,
                    rec.requests,
                    rec.tokens,
                    cost_string(int(rec.cost_micros)),
                    rec.unpriced_requests,
                ]
            )
    return rows


def summary_csv(session: Session, filters: Filters, scope: Scope) -> Iterator[str]:
    return csv_lines(SUMMARY_COLUMNS, summary_rows(session, filters, scope))
