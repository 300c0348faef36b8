"""A fresh process's first call is not charged for importing litellm (seconds)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core.clock import utc_now
from core.settings import endpoints, routes
from core.store import db
from tests.conftest import add_user
from tests.fakes import FakeOpenAI
from tests.gateway_support import MINI, OPENAI_KEY

PROJECT = Path(__file__).resolve().parent.parent

FIRST_CALL = """
import asyncio

from core.accounts.auth import caller_for, get_user
from core.request import ChatRequest
from core.gateway.runtime import build_runtime

runtime = build_runtime()
with runtime.sessions() as s:
    caller = caller_for(s, get_user(s, "alice").id)
done = asyncio.run(runtime.gateway.complete(ChatRequest(
    caller=caller, messages=({"role": "user", "content": "hi"},))))
print("status:", done.summary.status, "latency_ms:", done.summary.latency_ms)
runtime.close()
"""


def test_a_half_second_total_timeout_holds_on_a_fresh_process(
    isolated_env: Path, fake_openai: FakeOpenAI
) -> None:
    engine = db.make_engine(os.environ["SWITCHBOARD_DB_URL"])
    db.upgrade_database(engine)
    sessions = db.make_session_factory(engine)
    with sessions.begin() as s:
        endpoints.add_endpoint(
            s,
            name="openai",
            kind="override",
            api_base=fake_openai.base_url,
            actor="test",
            now=utc_now(),
            builtin_providers=("openai",),
        )
        routes.set_route(
            s,
            scope="org",
            scope_id=0,
            models=[MINI],
            known_model=lambda m: True,
            actor="test",
            now=utc_now(),
            options=routes.RouteOptions(total_timeout_s=0.5),
        )
    add_user(sessions, "alice")
    engine.dispose()
    env = {**os.environ, "OPENAI_API_KEY": OPENAI_KEY, "PYTHONPATH": str(PROJECT)}
    done = subprocess.run(
        [sys.executable, "-c", FIRST_CALL],
        env=env,
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    status, latency = done.stdout.split("status: ", 1)[1].split(" latency_ms: ")
    assert status == "success" and int(latency) < 500
