"""The dashboard process writes its queued ledger rows when it exits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from core.clock import utc_now
from core.settings import endpoints
from core.store import db
from core.store.tables import RequestRow
from tests.conftest import add_user
from tests.fakes import FakeOpenAI
from tests.gateway_support import MINI, OPENAI_KEY

PROJECT = Path(__file__).resolve().parent.parent

# A page's chat through the process's services, then a normal exit, as Streamlit makes on
# SIGTERM or Ctrl+C. The writer is told to let a batch fill for 30 s, so only the exit
# hook can write the row before the process is gone.
CHAT_THEN_EXIT = f"""
from core.store import batch_writer

_init = batch_writer.BatchWriter.__init__


def patient(self, *args, **kwargs):
    kwargs["max_delay_s"] = 30.0
    _init(self, *args, **kwargs)


batch_writer.BatchWriter.__init__ = patient

from core.accounts.auth import caller_for, get_user
from core.request import ChatRequest
from ui import resources

services = resources.services()
with services.sessions() as s:
    caller = caller_for(s, get_user(s, "alice").id)
done = services.gateway.complete(ChatRequest(
    caller=caller, messages=({{"role": "user", "content": "hi"}},), model={MINI!r},
    fallbacks=(), source="chat"))
print("answered:", done.text)
"""


def test_rows_queued_by_the_pages_are_written_when_the_process_exits(
    isolated_env: Path, fake_openai: FakeOpenAI
) -> None:
    url = os.environ["SWITCHBOARD_DB_URL"]
    engine = db.make_engine(url)
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
    add_user(sessions, "alice")
    env = {**os.environ, "OPENAI_API_KEY": OPENAI_KEY, "PYTHONPATH": str(PROJECT)}
    done = subprocess.run(
        [sys.executable, "-c", CHAT_THEN_EXIT],
        env=env,
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "answered: " + fake_openai.reply_text("gpt-4o-mini") in done.stdout
    with sessions() as s:
        rows = list(s.scalars(select(RequestRow)))
    engine.dispose()
    assert [(r.source, r.status, r.served_model) for r in rows] == [("chat", "success", MINI)]
