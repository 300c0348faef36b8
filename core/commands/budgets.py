"""Budget commands: `budget set` and `budget list`."""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts import auth
from core.commands.context import CliContext, print_table
from core.errors import InvalidInput, NotFound
from core.money import budgets
from core.request import MICROS_PER_USD
from core.store.tables import Endpoint, Team


def parse_usd(text: str) -> int:
    """Micro-dollars from "25", "12.50", "$1,000" (Decimal, so no float rounding)."""
    clean = text.strip().removeprefix("$").replace(",", "").strip()
    try:
        amount = Decimal(clean)
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount < 0:
        raise InvalidInput(
            f"{text!r} is not an amount of dollars. Give a number such as 25 or 12.50 "
            "(0 blocks all spending)."
        )
    micros = amount * MICROS_PER_USD
    if micros != micros.to_integral_value():
        raise InvalidInput(f"{text!r} has more than 6 decimal places; budgets count micro-dollars.")
    return int(micros)


def _known_provider(session: Session, name: str) -> bool:
    from core.money.catalog import load_catalog  # reads a JSON file; only this command needs it

    if name in load_catalog().providers():
        return True
    return session.scalar(select(Endpoint.id).where(Endpoint.name == name)) is not None


def _scope(session: Session, args: argparse.Namespace) -> tuple[str, str]:
    if args.user:
        return "user", str(auth.get_user(session, args.user).id)
    if args.team:
        team_id = session.scalar(select(Team.id).where(Team.name == args.team))
        if team_id is None:
            raise NotFound(
                f"No team named {args.team!r}. `switchboard user list` shows the teams in use."
            )
        return "team", str(team_id)
    provider = args.provider.strip()
    if not _known_provider(session, provider):
        raise InvalidInput(
            f"Unknown provider {provider!r}. Use a provider from `switchboard models` "
            "or the name of an endpoint."
        )
    return "provider", provider


def cmd_budget_set(args: argparse.Namespace, ctx: CliContext) -> int:
    limit = parse_usd(args.monthly)  # before opening the database, so a typo fails fast
    now = ctx.clock()
    with ctx.sessions().begin() as session:
        scope, key = _scope(session, args)
        info = budgets.set_budget(
            session, scope, key, limit, hard=not args.soft, actor="cli", now=now
        )
    kind = "hard (refuses requests over it)" if info.hard else "soft (alerts only)"
    ctx.out(
        f"Set a {kind} monthly budget of {budgets.usd(info.limit_micros)} for {info.label}. "
        f"Spent in {info.period}: {budgets.usd(info.spent_micros)}; "
        f"resets on {info.resets_on.isoformat()}."
    )
    return 0


def cmd_budget_list(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.sessions()() as session:
        infos = budgets.list_budgets(session, ctx.clock())
    if not infos:
        ctx.out("No budgets yet. Set one with: switchboard budget set --user NAME --monthly 25")
        return 0
    rows = [
        (
            b.label,
            "hard" if b.hard else "soft",
            budgets.usd(b.limit_micros),
            budgets.usd(b.spent_micros),
            budgets.usd(b.reserved_micros),
            budgets.usd(b.remaining_micros),
            b.period,
            b.resets_on.isoformat(),
        )
        for b in infos
    ]
    print_table(ctx, ("BUDGET", "KIND", "LIMIT", "SPENT", "HELD", "LEFT", "PERIOD", "RESETS"), rows)
    return 0


def register(sub: Any) -> None:
    budget = sub.add_parser("budget", help="set and list monthly budgets").add_subparsers(
        dest="budget_command", required=True, metavar="ACTION"
    )
    p = budget.add_parser("set", help="create or change a monthly budget (USD)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="a username")
    who.add_argument("--team", help="a team name")
    who.add_argument("--provider", help="a provider, e.g. openai, or an endpoint name")
    p.add_argument("--monthly", required=True, metavar="USD", help="the limit, e.g. 25 or 12.50")
    p.add_argument("--soft", action="store_true", help="alert at 80%% and 100%%; never refuse")
    p.set_defaults(handler=cmd_budget_set)
    p = budget.add_parser("list", help="list budgets with spend this month")
    p.set_defaults(handler=cmd_budget_list)
