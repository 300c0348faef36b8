"""Usage commands: `switchboard usage export` streams the ledger as CSV or JSON lines."""

from __future__ import annotations

import argparse
import csv
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from core import ledger
from core.chat import micros_to_usd
from core.commands.context import CliContext
from core.errors import InvalidInput

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MICRO = Decimal("0.000001")

# (output column, ledger column); the order is the CSV header and the JSON key order.
EXPORT_COLUMNS = (
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
)


def parse_day(flag: str, raw: str | None) -> date | None:
    """A strict YYYY-MM-DD (fromisoformat alone would also take 20261101)."""
    if raw is None:
        return None
    try:
        if not _DATE_RE.match(raw.strip()):
            raise ValueError(raw)
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidInput(f"{flag} must be a date like 2026-11-01, not {raw!r}.") from None


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


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):  # lowercase like the JSON, so both exports agree
        return "true" if value else "false"
    return value


def cmd_usage_export(args: argparse.Namespace, ctx: CliContext) -> int:
    since = parse_day("--since", args.since)
    until = parse_day("--until", args.until)
    if since and until and since > until:
        raise InvalidInput(f"--since ({since}) is after --until ({until}); swap them.")
    with ctx.sessions()() as session:
        records = (export_record(row) for row in ledger.iter_requests(session, since, until))
        if args.format == "json":
            for record in records:
                ctx.out(json.dumps(record, separators=(",", ":")))
        else:
            _write_csv(ctx, records)
    return 0


def _write_csv(ctx: CliContext, records: Iterator[dict[str, Any]]) -> None:
    # Row by row onto stdout, so a year of ledger never sits in memory as one string.
    writer = csv.writer(ctx.stdout, lineterminator="\n")
    writer.writerow([name for name, _ in EXPORT_COLUMNS])
    for record in records:
        writer.writerow([_csv_cell(value) for value in record.values()])


def register(sub: Any) -> None:
    usage = sub.add_parser("usage", help="read the usage ledger").add_subparsers(
        dest="usage_command", required=True, metavar="ACTION"
    )
    p = usage.add_parser(
        "export", help="write requests as CSV or JSON lines to stdout (UTC days, inclusive)"
    )
    p.add_argument("--since", metavar="YYYY-MM-DD", help="first UTC day to include")
    p.add_argument("--until", metavar="YYYY-MM-DD", help="last UTC day to include (whole day)")
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.set_defaults(handler=cmd_usage_export)
