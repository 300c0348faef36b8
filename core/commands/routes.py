"""Route commands: `route set` and `route list`."""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import auth, endpoints, routes
from core.catalog import load_catalog
from core.commands.context import CliContext, print_table
from core.errors import NotFound
from core.models import ORG_OWNER_ID, RouteRow, Team, User
from core.targets import TargetResolver


def _scope(session: Session, args: argparse.Namespace) -> tuple[str, int, str]:
    if args.user:
        user = auth.get_user(session, args.user)
        return "user", user.id, f"user {user.username}"
    if args.team:
        team_id = session.scalar(select(Team.id).where(Team.name == args.team))
        if team_id is None:
            raise NotFound(
                f"No team named {args.team!r}. `switchboard user list` shows the teams in use."
            )
        return "team", team_id, f"team {args.team}"
    return "org", ORG_OWNER_ID, "the organisation"


def cmd_route_set(args: argparse.Namespace, ctx: CliContext) -> int:
    fallbacks = [m.strip() for m in (args.fallback or "").split(",") if m.strip()]
    with ctx.sessions().begin() as session:
        scope, scope_id, label = _scope(session, args)
        resolver = TargetResolver(load_catalog(), endpoints.list_endpoints(session))
        options = routes.RouteOptions(cost_optimised=args.cost_optimised)
        routes.set_route(
            session,
            scope=scope,
            scope_id=scope_id,
            models=[args.model, *fallbacks],
            known_model=resolver.known,
            actor="cli",
            now=ctx.clock(),
            task=args.task or "",
            options=options,
        )
    chain = " -> ".join([args.model, *fallbacks])
    what = f"task {args.task!r}" if args.task else "default"
    ctx.out(f"Set the {what} route for {label}: {chain}.")
    return 0


def cmd_route_list(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.sessions()() as session:
        rows = list(session.scalars(select(RouteRow).order_by(RouteRow.scope, RouteRow.task)))
        users = dict(session.execute(select(User.id, User.username)).tuples().all())
        teams = dict(session.execute(select(Team.id, Team.name)).tuples().all())
    if not rows:
        ctx.out(
            "No routes yet. Set the organisation default with: "
            "switchboard route set --org --model MODEL"
        )
        return 0
    names = {"user": users, "team": teams}
    table = [
        (
            r.scope if r.scope == "org" else f"{r.scope}:{names[r.scope].get(r.scope_id, '?')}",
            r.task or "(default)",
            " -> ".join(r.models),
            "yes" if r.options.get("cost_optimised") else "no",
        )
        for r in rows
    ]
    print_table(ctx, ("SCOPE", "TASK", "CHAIN", "COST-OPTIMISED"), table)
    return 0


def register(sub: Any) -> None:
    group = sub.add_parser("route", help="model chains per user, team or organisation")
    actions = group.add_subparsers(dest="route_command", required=True, metavar="ACTION")
    p = actions.add_parser("set", help="set a route (primary model then fallbacks)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", metavar="USERNAME")
    who.add_argument("--team", metavar="TEAM")
    who.add_argument("--org", action="store_true", help="the organisation default")
    p.add_argument("--model", required=True, help="the primary model id")
    p.add_argument("--fallback", help="comma-separated fallback model ids, in order")
    p.add_argument("--task", help="a task name such as code or chat (default: all tasks)")
    p.add_argument(
        "--cost-optimised",
        action="store_true",
        help="order the chain by price, latency, quality and preference",
    )
    p.set_defaults(handler=cmd_route_set)
    p = actions.add_parser("list", help="list routes")
    p.set_defaults(handler=cmd_route_list)
