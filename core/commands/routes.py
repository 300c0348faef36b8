"""Route commands: `route set` and `route list`.

`route set` changes what its flags name and keeps the rest of a saved route: its
options (timeouts, retries, weights, provider order, ...) survive a new chain.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts import auth
from core.commands import route_options
from core.commands.context import CliContext, print_table
from core.errors import InvalidInput, NotFound
from core.money.catalog import load_catalog
from core.settings import endpoints, routes
from core.settings.routes import RouteOptions
from core.settings.targets import TargetResolver
from core.store.tables import ORG_OWNER_ID, RouteRow, Team, User


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
    if fallbacks and not args.model:
        raise InvalidInput("--fallback needs --model: give the whole chain, primary model first.")
    task = (args.task or "").strip().lower()
    what = f"task {task!r}" if task else "default"
    with ctx.sessions().begin() as session:
        scope, scope_id, label = _scope(session, args)
        listed = endpoints.list_endpoints(session)
        catalog = load_catalog()
        resolver = TargetResolver(catalog, listed)
        current = routes.get_route(session, scope=scope, scope_id=scope_id, task=task)
        if args.model:
            models = [args.model, *fallbacks]
        elif current is None:
            raise InvalidInput(
                f"There is no {what} route for {label} yet; give --model "
                "(and --fallback) to create it."
            )
        else:
            models = list(current.models)  # an options-only change keeps the chain
        # Merge, don't reset: the saved options stay unless a flag changes them.
        base = (
            RouteOptions()
            if current is None or args.reset_options
            else RouteOptions.from_json(current.options)
        )
        changes = route_options.option_changes(args, base, resolver.providers())
        if not (args.model or changes or args.reset_options):
            raise InvalidInput(
                "Nothing to change: give --model, or an option flag such as "
                "--total-timeout (see `switchboard route set --help`)."
            )
        options = replace(base, **changes)
        routes.set_route(
            session,
            scope=scope,
            scope_id=scope_id,
            models=models,
            known_model=resolver.known,
            actor="cli",
            now=ctx.clock(),
            task=task,
            options=options,
        )
    ctx.out(f"Set the {what} route for {label}: {' -> '.join(models)}.")
    ctx.out(f"Options: {route_options.describe(options) or 'defaults'}.")
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
            route_options.describe(RouteOptions.from_json(r.options)) or "(defaults)",
        )
        for r in rows
    ]
    # OPTIONS shows only what differs from the defaults, as the flags that set it.
    print_table(ctx, ("SCOPE", "TASK", "CHAIN", "OPTIONS"), table)
    return 0


def register(sub: Any) -> None:
    group = sub.add_parser("route", help="model chains per user, team or organisation")
    actions = group.add_subparsers(dest="route_command", required=True, metavar="ACTION")
    p = actions.add_parser(
        "set",
        help="set a route (primary model then fallbacks) and its options",
        description="Create or change a route. Saved options the flags do not name are kept.",
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", metavar="USERNAME")
    who.add_argument("--team", metavar="TEAM")
    who.add_argument("--org", action="store_true", help="the organisation default")
    p.add_argument(
        "--model",
        help="the primary model id (needed for a new route; "
        "omitted: keep the saved chain and change only options)",
    )
    p.add_argument("--fallback", help="comma-separated fallback model ids, in order")
    p.add_argument("--task", help="a task name such as code or chat (default: all tasks)")
    route_options.add_option_flags(p)
    p.set_defaults(handler=cmd_route_set)
    p = actions.add_parser("list", help="list routes")
    p.set_defaults(handler=cmd_route_list)
