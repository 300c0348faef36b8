"""Usage commands: `switchboard usage export` streams the ledger as CSV or JSON lines.

With filters it exports what the Analytics page's filters select; with ``--summary``
it writes the per-user and per-team cost summary instead of the requests.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
from sqlalchemy import select

from core.analytics import webhook
from core.analytics.alerts import current_alerts
from core.analytics.exports import (
    EXPORT_COLUMNS,
    SUMMARY_COLUMNS,
    cost_string,
    csv_cell,
    export_record,
    iso_utc,
    iter_filtered_requests,
    summary_rows,
)
from core.analytics.filters import Filters
from core.analytics.scope import Scope
from core.commands.context import CliContext
from core.errors import InvalidInput, NotFound
from core.store import ledger
from core.store.tables import Team, User

__all__ = ["EXPORT_COLUMNS", "cost_string", "export_record", "iso_utc", "parse_day"]

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EARLIEST = date(1970, 1, 1)
_LATEST = date(9999, 12, 30)
# The shell is an operator's tool: it sees everything, like an admin.
_EVERYTHING = Scope("all", 0, None, "everyone")


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


def _has_filters(args: argparse.Namespace) -> bool:
    return (
        any(
            getattr(args, name)
            for name in ("user", "team", "provider", "model", "task", "source", "status")
        )
        or args.summary
    )


def _filters(
    ctx: CliContext, args: argparse.Namespace, since: date | None, until: date | None
) -> Filters:
    values: dict[str, Any] = {
        k: getattr(args, k) for k in ("provider", "model", "task", "source", "status")
    }
    with ctx.sessions()() as session:
        if args.user:
            values["user_id"] = session.scalar(select(User.id).where(User.username == args.user))
            if values["user_id"] is None:
                raise NotFound(f"No user named {args.user!r}. See `switchboard user list`.")
        if args.team:
            values["team_id"] = session.scalar(select(Team.id).where(Team.name == args.team))
            if values["team_id"] is None:
                raise NotFound(f"No team named {args.team!r}.")
    return Filters(since or _EARLIEST, until or _LATEST, "custom", **values)


def cmd_usage_export(args: argparse.Namespace, ctx: CliContext) -> int:
    since = parse_day("--since", args.since)
    until = parse_day("--until", args.until)
    if since and until and since > until:
        raise InvalidInput(f"--since ({since}) is after --until ({until}); swap them.")
    if args.summary and args.format == "json":
        raise InvalidInput("--summary writes CSV only; drop --format json.")
    filtered = _has_filters(args)
    filters = _filters(ctx, args, since, until) if filtered else None
    with ctx.sessions()() as session:
        if args.summary:
            assert filters is not None
            writer = csv.writer(ctx.stdout, lineterminator="\n")
            writer.writerow(SUMMARY_COLUMNS)
            for row in summary_rows(session, filters, _EVERYTHING):
                writer.writerow([csv_cell(v) for v in row])
            return 0
        rows = (
            iter_filtered_requests(session, filters, _EVERYTHING)
            if filters is not None
            else ledger.iter_requests(session, since, until)
        )
        records = (export_record(row) for row in rows)
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
        writer.writerow([csv_cell(value) for value in record.values()])


def cmd_usage_alerts(args: argparse.Namespace, ctx: CliContext) -> int:
    """Print the current org-wide alerts; with --send, post new ones to the webhook."""
    now = ctx.clock()
    sessions = ctx.sessions()
    with sessions() as session:
        found = current_alerts(session, _EVERYTHING, now)
    for alert in found:
        ctx.out(f"{alert.severity:7}  {alert.kind:18}  {alert.message}")
    if not found:
        ctx.out("No alerts right now.")
    if args.send:
        with httpx.Client() as client:
            sent = webhook.dispatch(sessions, found, now=now, client=client)
        ctx.out(f"Sent {sent} new alert(s) to the webhook.")
    return 0


def register(sub: Any) -> None:
    usage = sub.add_parser("usage", help="read the usage ledger").add_subparsers(
        dest="usage_command", required=True, metavar="ACTION"
    )
    p = usage.add_parser(
        "export", help="write requests (or a cost summary) as CSV or JSON lines to stdout"
    )
    p.add_argument("--since", metavar="YYYY-MM-DD", help="first UTC day to include")
    p.add_argument("--until", metavar="YYYY-MM-DD", help="last UTC day to include (whole day)")
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("--user", metavar="USERNAME", help="only this user's requests")
    p.add_argument("--team", metavar="TEAM", help="only this team's requests")
    p.add_argument("--provider", help="only requests served by this provider")
    p.add_argument("--model", help="only this model (served, else requested)")
    p.add_argument("--task", help="only this task")
    p.add_argument("--source", choices=("chat", "compare", "api"), help="only this source")
    p.add_argument("--status", help="only this status (e.g. success, failed, no-key)")
    p.add_argument(
        "--summary",
        action="store_true",
        help="write cost per user and per team (CSV) instead of requests",
    )
    p.set_defaults(handler=cmd_usage_export)
    p = usage.add_parser(
        "alerts",
        help="list current alerts; --send posts new ones to the "
        "webhook (run it from cron so alerts go out without a page visit)",
    )
    p.add_argument("--send", action="store_true", help="send new alerts to the webhook")
    p.set_defaults(handler=cmd_usage_alerts)
