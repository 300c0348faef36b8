"""Provider keys, endpoints and the master key: `key`, `provider` and `secret` commands.

Keys are read from standard input and never printed; only their masks are.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts import auth, keys, secrets
from core.commands.context import CliContext, print_table
from core.config import load_settings
from core.errors import InvalidInput, NotFound
from core.settings import endpoints
from core.store.tables import ORG_OWNER_ID, Team


def _builtin_providers() -> tuple[str, ...]:
    from core.money.catalog import load_catalog

    return load_catalog().providers()


def _owner(session: Session, args: argparse.Namespace) -> tuple[keys.OwnerKind, int, str]:
    """(kind, id, label) from --user / --team; neither means the organisation."""
    if args.user:
        user = auth.get_user(session, args.user)
        return "user", user.id, f"user {user.username!r}"
    if args.team:
        team = session.scalar(select(Team).where(Team.name == args.team))
        if team is None:
            raise NotFound(
                f"No team named {args.team!r}. `switchboard user list` shows each user's team."
            )
        return "team", team.id, f"team {team.name!r}"
    return "org", ORG_OWNER_ID, "the organisation"


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M") if at else "-"


def cmd_key_set(args: argparse.Namespace, ctx: CliContext) -> int:
    cipher = secrets.load_cipher(load_settings())
    known = set(_builtin_providers())
    # Check provider and owner before asking for the key, so a typo fails fast.
    with ctx.sessions()() as session:
        known.update(e.name for e in endpoints.list_endpoints(session))
        _owner(session, args)
    if args.provider not in known:
        raise InvalidInput(
            f"Unknown provider {args.provider!r}. `switchboard models` lists catalog providers "
            "and `switchboard provider list` lists endpoints."
        )
    secret = ctx.read_secret(f"{args.provider} API key: ")
    with ctx.sessions().begin() as session:
        kind, owner_id, label = _owner(session, args)
        info = keys.set_key(
            session,
            cipher,
            owner_kind=kind,
            owner_id=owner_id,
            provider=args.provider,
            secret=secret,
            actor="cli",
            now=ctx.clock(),
            known_providers=known,
        )
    ctx.out(f"Saved the {info.provider} key for {label}: {info.masked}")
    for warning in keys.key_warnings(args.provider, secret):
        ctx.out(f"warning: {warning}")
    return 0


def cmd_key_list(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.sessions()() as session:
        kind, owner_id, label = _owner(session, args)
        infos = keys.list_keys(session, kind, owner_id)
    if not infos:
        ctx.out(f"No keys for {label}. Add one with: switchboard key set PROVIDER < key.txt")
        return 0
    rows = [
        (
            k.provider,
            k.masked,
            _when(k.updated_at),
            _when(k.last_used_at),
            _when(k.last_auth_failure_at),
        )
        for k in infos
    ]
    print_table(ctx, ("PROVIDER", "KEY", "UPDATED", "LAST USED", "LAST AUTH FAILURE"), rows)
    return 0


def cmd_key_delete(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.sessions().begin() as session:
        kind, owner_id, label = _owner(session, args)
        keys.delete_key(
            session,
            owner_kind=kind,
            owner_id=owner_id,
            provider=args.provider,
            actor="cli",
            now=ctx.clock(),
        )
    ctx.out(f"Deleted the {args.provider} key of {label}.")
    return 0


def cmd_provider_add(args: argparse.Namespace, ctx: CliContext) -> int:
    builtin = _builtin_providers()
    if args.type == "openai-compatible":
        kind = "openai-compatible"
    elif args.type == args.name and args.name in builtin:
        kind = "override"
    else:
        raise InvalidInput(
            f"--type {args.type!r} does not fit {args.name!r}. Use --type openai-compatible "
            f"for a new endpoint, or --type {args.name} to point the built-in provider "
            f"{args.name!r} at another URL (only for built-in providers)."
        )
    models = [m for m in (args.models or "").split(",") if m.strip()]
    with ctx.sessions().begin() as session:
        info = endpoints.add_endpoint(
            session,
            name=args.name,
            kind=kind,
            api_base=args.api_base,
            models=models,
            supports_prefill=args.prefill,
            actor="cli",
            now=ctx.clock(),
            builtin_providers=builtin,
        )
    what = "endpoint" if info.kind == "openai-compatible" else "override of"
    ctx.out(f"Added {what} {info.name!r} at {info.api_base}.")
    if info.kind == "openai-compatible":
        ctx.out(f"Set its key with: switchboard key set {info.name} < key.txt")
    return 0


def cmd_provider_list(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.sessions()() as session:
        infos = endpoints.list_endpoints(session)
    if not infos:
        ctx.out(
            "No endpoints yet. Add one with: switchboard provider add NAME "
            "--type openai-compatible --api-base URL --models a,b"
        )
        return 0
    rows = [
        (
            e.name,
            e.kind,
            e.api_base,
            ",".join(e.models) or "-",
            "yes" if e.supports_prefill else "no",
        )
        for e in infos
    ]
    print_table(ctx, ("NAME", "TYPE", "API BASE", "MODELS", "PREFILL"), rows)
    return 0


def cmd_secret_rotate(args: argparse.Namespace, ctx: CliContext) -> int:
    result = secrets.rotate(ctx.sessions(), load_settings(), actor="cli", now=ctx.clock())
    ctx.out(f"Re-encrypted {result.reencrypted} keys under master key {result.key_id}.")
    if result.source == "env":
        ctx.out(
            f"Now set {secrets.ENV_VAR} to the first key alone and restart the app; "
            "the old keys are no longer needed."
        )
    else:
        ctx.out(f"Removed {result.dropped_keys} old master key(s). Restart the app to use it.")
    return 0


def _add_owner_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--user", metavar="USERNAME", help="a user's own key")
    group.add_argument("--team", metavar="TEAM", help="a team's shared key")


def register(sub: Any) -> None:
    key = sub.add_parser("key", help="manage provider API keys").add_subparsers(
        dest="key_command", required=True, metavar="ACTION"
    )
    p = key.add_parser("set", help="store a key read from standard input (default: org key)")
    p.add_argument("provider")
    _add_owner_options(p)
    p.set_defaults(handler=cmd_key_set)
    p = key.add_parser("list", help="list stored keys, masked")
    _add_owner_options(p)
    p.set_defaults(handler=cmd_key_list)
    p = key.add_parser("delete", help="delete a stored key")
    p.add_argument("provider")
    _add_owner_options(p)
    p.set_defaults(handler=cmd_key_delete)

    provider = sub.add_parser("provider", help="manage endpoints").add_subparsers(
        dest="provider_command", required=True, metavar="ACTION"
    )
    p = provider.add_parser("add", help="add an OpenAI-compatible endpoint or a URL override")
    p.add_argument("name")
    p.add_argument(
        "--type",
        required=True,
        help="openai-compatible, or the provider's own name to override its URL",
    )
    p.add_argument("--api-base", required=True, metavar="URL")
    p.add_argument("--models", help="comma-separated model names")
    p.add_argument("--prefill", action="store_true", help="the models accept assistant prefill")
    p.set_defaults(handler=cmd_provider_add)
    p = provider.add_parser("list", help="list endpoints")
    p.set_defaults(handler=cmd_provider_list)

    secret = sub.add_parser("secret", help="manage the master key").add_subparsers(
        dest="secret_command", required=True, metavar="ACTION"
    )
    p = secret.add_parser("rotate", help="re-encrypt every stored key under a new master key")
    p.set_defaults(handler=cmd_secret_rotate)
