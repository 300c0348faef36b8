"""The ``switchboard`` command. Every command honours SWITCHBOARD_DB_URL.

Errors a person can act on print one line to stderr and exit 2; nothing prints a
traceback unless SWITCHBOARD_DEBUG=1. Each area registers its commands from
core/commands/.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from core.clock import Clock, utc_now
from core.commands import api as api_commands
from core.commands import basics, demo, importenv, keys, routes, usage
from core.commands import budgets as budget_commands
from core.commands import tokens as token_commands
from core.commands.context import CliContext, Handler
from core.errors import SwitchboardError

REGISTRARS = (
    basics.register,
    keys.register,
    routes.register,
    budget_commands.register,
    usage.register,
    token_commands.register,
    api_commands.register,
    importenv.register,
    demo.register,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchboard", description="Switchboard: a self-hosted LLM gateway for teams."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in REGISTRARS:
        register(sub)
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
