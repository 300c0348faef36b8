"""`switchboard api`: serve the OpenAI-compatible /v1 API alone, without the dashboard."""

from __future__ import annotations

import argparse
import signal
from types import FrameType
from typing import Any

from core.commands.context import CliContext
from core.errors import InvalidInput

DEFAULT_PORT = 8600
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class _Terminated(Exception):
    """SIGTERM, re-raised by uvicorn after its graceful shutdown."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def cmd_api(args: argparse.Namespace, ctx: CliContext) -> int:
    import uvicorn  # lazily: other commands should not pay for the server's imports

    from core.api.app import build_app
    from core.api.context import ApiContext
    from core.config import load_settings

    if not 0 < args.port < 65536:
        raise InvalidInput(f"--port must be between 1 and 65535; got {args.port}.")
    api = ApiContext(load_settings(), clock=ctx.clock, freeze_heap=True)
    # Build now rather than on the first request: a bad database URL or key file then
    # fails here with a one-line error instead of as a 500 on someone's first call.
    api.runtime()
    where = f"http://{args.host}:{args.port}"
    ctx.out(f"Switchboard API on {where}/v1 (health: {where}/health). Ctrl+C stops it.")
    if args.host not in LOCAL_HOSTS:
        ctx.out("Listening beyond this machine: put TLS in front of it (a reverse proxy).")
    # uvicorn re-raises SIGTERM once it has shut down; with the default handler that kills
    # the process before the clean-up below. Ours turns it into a normal stop.
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        # The app's lifespan flushes the ledger on a graceful stop (Ctrl+C or SIGTERM).
        uvicorn.run(
            build_app(api),
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            access_log=args.log_level == "debug",
        )
    except (KeyboardInterrupt, _Terminated):
        pass  # re-raised by uvicorn after its graceful shutdown: that is a normal stop
    finally:
        signal.signal(signal.SIGTERM, previous)
        api.close()  # also covers a failed start (port in use), where no lifespan ran
    ctx.out("Stopped.")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("api", help="serve the OpenAI-compatible /v1 API (without the dashboard)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help="server log level (debug also logs each request)",
    )
    p.set_defaults(handler=cmd_api)
