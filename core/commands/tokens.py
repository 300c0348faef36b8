"""Gateway token commands: create (shown once), list, revoke."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from core.accounts import tokens
from core.commands.context import CliContext, print_table


def cmd_token_create(args: argparse.Namespace, ctx: CliContext) -> int:
    # Validate the name before opening the database, so a typo fails fast.
    name = tokens.validate_name(args.name)
    with ctx.sessions().begin() as session:
        token, info = tokens.create_token(
            session, username=args.username, name=name, actor="cli", now=ctx.clock()
        )
    # Printed only after the commit: a token shown for a rolled-back row would not work.
    ctx.out(f"Created gateway token {info.name!r} for {info.username}:")
    ctx.out()
    ctx.out(f"    {token}")
    ctx.out()
    ctx.out("Copy it now: it will not be shown again (only its hash is stored).")
    ctx.out("Send it to the /v1 API as the header `Authorization: Bearer <token>`.")
    return 0


def _when(at: datetime | None) -> str:
    return "-" if at is None else at.strftime("%Y-%m-%d %H:%M")


def cmd_token_list(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.sessions()() as session:
        found = tokens.list_tokens(session, args.user)
    if not found:
        ctx.out("No gateway tokens yet. Create one with: switchboard token create USERNAME")
        return 0
    rows = [
        (
            t.username,
            t.name,
            t.prefix + "…",
            _when(t.created_at),
            _when(t.last_used_at),
            f"revoked {_when(t.revoked_at)}" if t.revoked else "active",
        )
        for t in found
    ]
    print_table(ctx, ("USER", "NAME", "PREFIX", "CREATED", "LAST USED", "STATUS"), rows)
    return 0


def cmd_token_revoke(args: argparse.Namespace, ctx: CliContext) -> int:
    now = ctx.clock()
    with ctx.sessions().begin() as session:
        info = tokens.revoke_token(
            session, username=args.username, name=args.name, actor="cli", now=now
        )
    if info.revoked_at != now:
        when = _when(info.revoked_at)
        ctx.out(f"Token {info.name!r} of {info.username} was already revoked on {when}.")
    else:
        ctx.out(f"Revoked token {info.name!r} of {info.username}; it no longer works.")
    return 0


def register(sub: Any) -> None:
    token = sub.add_parser("token", help="manage gateway tokens for the /v1 API").add_subparsers(
        dest="token_command", required=True, metavar="ACTION"
    )
    p = token.add_parser("create", help="create a token for a user; it is shown once")
    p.add_argument("username")
    p.add_argument("--name", default=tokens.DEFAULT_NAME, help="label, e.g. ci or laptop")
    p.set_defaults(handler=cmd_token_create)
    p = token.add_parser("list", help="list tokens (never their values)")
    p.add_argument("--user", metavar="USERNAME")
    p.set_defaults(handler=cmd_token_list)
    p = token.add_parser("revoke", help="revoke a user's token by name")
    p.add_argument("username")
    p.add_argument("name")
    p.set_defaults(handler=cmd_token_revoke)
