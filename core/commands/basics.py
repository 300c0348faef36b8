"""Foundation commands: init, user add/list, models."""

from __future__ import annotations

import argparse
import json
from decimal import Decimal
from typing import Any

from core.accounts import auth
from core.commands.context import CliContext, print_table
from core.errors import InvalidInput
from core.store import db
from core.store.tables import ROLES


def cmd_init(args: argparse.Namespace, ctx: CliContext) -> int:
    engine = ctx.engine()
    ctx.out(
        f"Database ready at {db.describe_url(engine.url)} (revision {db.current_revision(engine)})."
    )
    return 0


def cmd_user_add(args: argparse.Namespace, ctx: CliContext) -> int:
    # Validate what we can before asking for a password, so a typo fails fast.
    auth.validate_username(args.username)
    auth.validate_role(args.role)
    password = ctx.read_secret(f"Password for {args.username}: ")
    with ctx.sessions().begin() as session:
        user = auth.create_user(
            session,
            username=args.username,
            password=password,
            role=args.role,
            team=args.team,
            display_name=args.name,
            email=args.email,
            actor="cli",
            now=ctx.clock(),
        )
    ctx.out(
        f"Created {user.role} {user.username!r}"
        + (f" in team {user.team!r}." if user.team else ".")
    )
    return 0


def cmd_user_list(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.sessions()() as session:
        users = auth.list_users(session)
    if not users:
        ctx.out("No users yet. Add the first admin with: switchboard user add NAME --role admin")
        return 0
    rows = [
        (
            u.username,
            u.display_name,
            u.role,
            u.team or "-",
            "active" if u.active else "inactive",
            u.created_at.strftime("%Y-%m-%d"),
        )
        for u in users
    ]
    print_table(ctx, ("USERNAME", "NAME", "ROLE", "TEAM", "STATUS", "CREATED"), rows)
    return 0


def _price(value: Decimal | None) -> str:
    return "unpriced" if value is None else f"{value.normalize():f}"


def cmd_models(args: argparse.Namespace, ctx: CliContext) -> int:
    from core.money.catalog import load_catalog

    catalog = load_catalog()
    providers = (args.provider,) if args.provider else ()
    if args.provider and args.provider not in catalog.providers():
        known = ", ".join(catalog.providers())
        raise InvalidInput(f"Unknown provider {args.provider!r}. Known providers: {known}.")
    models = catalog.search(providers=providers)
    if args.json:
        payload = {
            "price_version": catalog.price_version,
            "models": [_model_json(m) for m in models],
        }
        ctx.out(json.dumps(payload, indent=2))
        return 0
    rows = [
        (
            m.id,
            m.cost_tier,
            _price(m.input_price),
            _price(m.output_price),
            str(m.context_window or "?"),
        )
        for m in models
    ]
    print_table(ctx, ("MODEL", "TIER", "IN $/1M", "OUT $/1M", "CONTEXT"), rows)
    ctx.out(f"\n{len(models)} models; prices from {catalog.price_version}.")
    return 0


def _model_json(model: Any) -> dict[str, Any]:
    return {
        "id": model.id,
        "provider": model.provider,
        "display_name": model.display_name,
        "context_window": model.context_window,
        "max_output_tokens": model.max_output_tokens,
        # Strings keep prices exact; JSON numbers would round-trip through floats.
        "input_price_per_1m": None if model.input_price is None else str(model.input_price),
        "output_price_per_1m": None if model.output_price is None else str(model.output_price),
        "priced": model.priced,
        "cost_tier": model.cost_tier,
        "capabilities": {
            "vision": model.vision,
            "tools": model.tools,
            "json_mode": model.json_mode,
            "streaming": model.streaming,
        },
    }


def register(sub: Any) -> None:
    p = sub.add_parser("init", help="create or upgrade the database (safe to repeat)")
    p.set_defaults(handler=cmd_init)

    user = sub.add_parser("user", help="manage users").add_subparsers(
        dest="user_command", required=True, metavar="ACTION"
    )
    p = user.add_parser("add", help="add a user; the password is read from standard input")
    p.add_argument("username")
    p.add_argument("--role", required=True, help=f"one of: {', '.join(ROLES)}")
    p.add_argument("--team")
    p.add_argument("--name", help="display name")
    p.add_argument("--email")
    p.set_defaults(handler=cmd_user_add)
    p = user.add_parser("list", help="list users")
    p.set_defaults(handler=cmd_user_list)

    p = sub.add_parser("models", help="list the model catalog")
    p.add_argument("--provider")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_models)
