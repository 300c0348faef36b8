"""`switchboard demo-data`: fill a database with clearly labelled synthetic usage."""

from __future__ import annotations

import argparse
import time
from typing import Any

from core.analytics.demo_data import generate
from core.commands.context import CliContext
from core.money.catalog import load_catalog
from core.store import db


def cmd_demo_data(args: argparse.Namespace, ctx: CliContext) -> int:
    if args.db:
        engine = db.make_engine(args.db)
        db.upgrade_database(engine)
        sessions = db.make_session_factory(engine)
    else:
        engine = None
        sessions = ctx.sessions()
    started = time.monotonic()
    last = {"at": 0.0, "done": -1.0}

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if done != last["done"] and (done >= total or now - last["at"] >= 1.0):
            last["at"], last["done"] = now, done
            ctx.out(f"  {done:,} / {total:,} requests ({done * 100 // max(total, 1)}%)")

    try:
        ctx.out(
            f"Writing {args.rows:,} synthetic requests over {args.days} days "
            "(users and teams named demo-*, requests marked route_source=demo)…"
        )
        written = generate(
            sessions,
            load_catalog(),
            rows=args.rows,
            days=args.days,
            now=ctx.clock(),
            force=args.force,
            seed=args.seed,
            progress=progress,
        )
    finally:
        if engine is not None:
            engine.dispose()
    ctx.out(f"Done: {written:,} demo requests in {time.monotonic() - started:.1f} s.")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo-data",
        help="fill a database with synthetic, clearly labelled usage (for demos and benchmarks)",
    )
    p.add_argument("--rows", type=int, default=10_000, help="requests to write (default 10000)")
    p.add_argument("--days", type=int, default=30, help="spread over this many days (default 30)")
    p.add_argument("--db", metavar="URL", help="database URL (default: SWITCHBOARD_DB_URL)")
    p.add_argument(
        "--force", action="store_true", help="write even if the database already holds real usage"
    )
    p.add_argument("--seed", type=int, default=7, help="random seed (same seed, same data)")
    p.set_defaults(handler=cmd_demo_data)
