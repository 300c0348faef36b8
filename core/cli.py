"""The ``switchboard`` command. Every command honours SWITCHBOARD_DB_URL.

Errors a person can act on print one line to stderr and exit 2; nothing prints a
traceback unless SWITCHBOARD_DEBUG=1.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, TextIO

from sqlalchemy import Engine

from core import auth, db
from core.clock import Clock, utc_now
from core.config import load_settings
from core.errors import InvalidInput, SwitchboardError
from core.models import ROLES

Handler = Callable[[argparse.Namespace, "CliContext"], int]


class CliContext:
    """What a command needs, built lazily so `switchboard models` never opens a database."""

    def __init__(self, stdin: TextIO, stdout: TextIO, clock: Clock) -> None:
        self.stdin = stdin
        self.stdout = stdout
        self.clock = clock
        self._engine: Engine | None = None

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = db.make_engine(load_settings().database_url)
            db.upgrade_database(self._engine)
        return self._engine

    def out(self, text: str = "") -> None:
        print(text, file=self.stdout)

    def read_secret(self, prompt: str) -> str:
        """A secret from stdin: prompted twice on a terminal, else the first line of a pipe."""
        if self.stdin.isatty():
            first = getpass.getpass(prompt)
            if getpass.getpass("Repeat: ") != first:
                raise InvalidInput("The two entries differ. Nothing was changed; try again.")
            return first
        line = self.stdin.readline()
        return line.rstrip("\r\n")

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


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
    factory = db.make_session_factory(ctx.engine())
    with factory.begin() as session:
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
    factory = db.make_session_factory(ctx.engine())
    with factory() as session:
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
    _print_table(ctx, ("USERNAME", "NAME", "ROLE", "TEAM", "STATUS", "CREATED"), rows)
    return 0


def _price(value: Decimal | None) -> str:
    return "unpriced" if value is None else f"{value.normalize():f}"


def cmd_models(args: argparse.Namespace, ctx: CliContext) -> int:
    from core.catalog import load_catalog

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
    _print_table(ctx, ("MODEL", "TIER", "IN $/1M", "OUT $/1M", "CONTEXT"), rows)
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


def _print_table(ctx: CliContext, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        ctx.out("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchboard", description="Switchboard: a self-hosted LLM gateway for teams."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    clock: Clock = utc_now,
) -> int:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    err = stderr or sys.stderr
    args = build_parser().parse_args(argv)
    ctx = CliContext(stdin or sys.stdin, stdout or sys.stdout, clock)
    handler: Handler = args.handler
    try:
        return handler(args, ctx)
    except SwitchboardError as exc:
        print(f"error: {exc.message}", file=err)
        return 2
    except KeyboardInterrupt:
        print("interrupted; nothing was changed by the unfinished step.", file=err)
        return 130
    except Exception as exc:
        if os.environ.get("SWITCHBOARD_DEBUG") == "1":
            raise
        print(
            f"error: unexpected {exc.__class__.__name__}. Nothing half-written was kept. "
            "Run again with SWITCHBOARD_DEBUG=1 to see details.",
            file=err,
        )
        return 1
    finally:
        ctx.close()
