"""The browser benchmark's database: demo usage, an admin, the fake provider and votes.

`switchboard demo-data` writes the ledger (slow at 1M rows, so a copy can be kept in
SWITCHBOARD_BENCH_DB_CACHE and reused by later runs); the admin, the openai override
pointing at the fake and the comparison votes are added to a fresh copy each run.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

ROOT = Path(__file__).resolve().parents[1]
CACHE_ENV = "SWITCHBOARD_BENCH_DB_CACHE"
ADMIN = "bench-admin"
PASSWORD = "bench-password-123456"
DAYS = 90
VOTES = 600
# (model, hidden strength): who tends to win the seeded votes.
VOTED_MODELS = (
    ("openai/gpt-4o", 2.0),
    ("openai/gpt-4o-mini", 1.0),
    ("anthropic/claude-3-5-sonnet-20241022", 2.4),
    ("anthropic/claude-3-haiku-20240307", 0.8),
    ("gemini/gemini-2.0-flash", 1.2),
    ("mistral/mistral-large-latest", 0.9),
    ("deepseek/deepseek-chat", 1.1),
)
TASKS = ("summarise", "code-review", "support-reply", "translate", "extract", "chat")


def demo_database(rows: int, folder: Path) -> tuple[Path, float | None]:
    """A database with ``rows`` demo requests in ``folder``; (path, seconds to fill or None)."""
    target = folder / f"browser-{rows}.db"
    cache = os.environ.get(CACHE_ENV)
    cached = Path(cache) / f"demo-{rows}.db" if cache else None
    if cached is not None and cached.exists():
        shutil.copyfile(cached, target)
        return target, None
    started = time.perf_counter()
    cmd = [sys.executable, "-m", "core", "demo-data", "--rows", str(rows), "--days", str(DAYS)]
    done = subprocess.run(
        [*cmd, "--db", f"sqlite:///{target}"],
        cwd=ROOT,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"demo-data failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    filled = time.perf_counter() - started
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, cached)
    return target, filled


def sessions_for(db_path: Path) -> sessionmaker[Session]:
    from core.store import db

    engine = db.make_engine(f"sqlite:///{db_path}")
    db.upgrade_database(engine)
    return db.make_session_factory(engine)


def seed(sessions: sessionmaker[Session], fake_base_url: str) -> int:
    """The admin (returns its id), the openai override and VOTES comparison votes."""
    from core.accounts.auth import create_user
    from core.clock import utc_now
    from core.money.catalog import load_catalog
    from core.settings import endpoints

    now = utc_now()
    with sessions.begin() as s:
        admin = create_user(
            s,
            username=ADMIN,
            password=PASSWORD,
            role="admin",
            actor="bench",
            now=now,
            rounds=4,
            display_name="Bench Admin",
        )
        endpoints.add_endpoint(
            s,
            name="openai",
            kind="override",
            api_base=fake_base_url,
            actor="bench",
            now=now,
            builtin_providers=load_catalog().providers(),
        )
    rng = random.Random(21)
    for _ in range(VOTES):
        add_vote(sessions, admin.id, rng)
    return admin.id


def add_vote(sessions: sessionmaker[Session], user_id: int, rng: random.Random) -> None:
    """One comparison (two to three models, one round) and the user's vote on it."""
    from tests.support import compare

    picked = rng.sample(VOTED_MODELS, rng.choice((2, 2, 3)))
    models = [m for m, _ in picked]
    winner = rng.choices(models, weights=[w for _, w in picked])[0]
    owner = compare.caller(sessions, user_id)
    sid = compare.new_session(sessions, owner, models, task=rng.choice(TASKS))
    answers = [
        compare.answer(m, cost=rng.randint(50, 5_000), latency=rng.randint(300, 4_000))
        for m in models
    ]
    rid = compare.add_round(sessions, owner, sid, answers, seed=rng.randint(0, 10**6))
    if rng.random() < 0.15:
        compare.vote(sessions, owner, rid, rng.choice(("tie", "all_bad")))
    else:
        compare.vote(sessions, owner, rid, "best", winner)
