"""`switchboard import-env`: environment keys and a default model into org defaults."""

from __future__ import annotations

import argparse
import os
from typing import Any

from core.accounts import secrets
from core.commands.context import CliContext
from core.config import load_settings
from core.money.catalog import load_catalog
from core.settings import endpoints, import_env
from core.settings.targets import TargetResolver


def cmd_import_env(args: argparse.Namespace, ctx: CliContext) -> int:
    catalog = load_catalog()
    cipher = secrets.load_cipher(load_settings())
    with ctx.sessions().begin() as session:
        listed = endpoints.list_endpoints(session)
        resolver = TargetResolver(catalog, listed)
        result = import_env.import_env(
            session,
            cipher,
            os.environ,
            catalog=catalog,
            known_model=resolver.known,
            known_providers={*catalog.providers(), *(e.name for e in listed)},
            actor="cli",
            now=ctx.clock(),
            model=args.model,
            replace=args.replace,
        )
    for line in result.lines():
        ctx.out(line)
    if not result.imported and result.default_model is None:
        ctx.out("Nothing changed.")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "import-env",
        help="import environment provider keys and a default model as organisation defaults",
    )
    p.add_argument(
        "--model",
        help=f"the default model (else ${import_env.DEFAULT_MODEL_ENV}, "
        "else a cheap model of the single provider found)",
    )
    p.add_argument(
        "--replace",
        action="store_true",
        help="overwrite existing organisation keys and default route",
    )
    p.set_defaults(handler=cmd_import_env)
