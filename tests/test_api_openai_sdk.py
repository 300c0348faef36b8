"""The official `openai` SDK, unchanged, against the /v1 API served for real over TCP.

The tests run uvicorn in a thread on a free loopback port, with a gateway wired to the
fake providers; `switchboard api` runs in-process with uvicorn.run swapped for that
thread. One test starts `streamlit run app.py` to prove the dashboard process serves /v1.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import uvicorn
from openai.types.chat import ChatCompletionMessageParam
from sqlalchemy import select

from core.accounts import tokens
from core.api.app import build_app
from core.api.context import ApiContext
from core.clock import utc_now
from core.commands import api as api_command
from core.commands.context import CliContext
from core.gateway.runtime import Runtime
from core.money.catalog import Catalog
from core.settings import endpoints
from core.store import db
from core.store.tables import RequestRow
from tests.conftest import add_user
from tests.fakes import FakeOpenAI, Reply, Status
from tests.support.server import ServerThread, free_socket
from tests.test_api import MINI, OPENAI_KEY, catalog, make_runtime, template_db, wire

__all__ = ["catalog", "template_db"]  # fixtures shared with test_api

PROJECT = Path(__file__).resolve().parent.parent
HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


class Served:
    def __init__(self, url: str, token: str, runtime: Runtime) -> None:
        self.url, self.token, self.runtime = url, token, runtime

    def client(self, **kw: Any) -> openai.OpenAI:
        kw.setdefault("api_key", self.token)
        return openai.OpenAI(base_url=f"{self.url}/v1", max_retries=0, timeout=20, **kw)

    def rows(self) -> list[RequestRow]:
        assert self.runtime.gateway.flush(10)
        with self.runtime.sessions() as s:
            return list(s.scalars(select(RequestRow).order_by(RequestRow.at)))


@pytest.fixture
def served(
    isolated_env: Path, template_db: Path, catalog: Catalog, fake_openai: FakeOpenAI
) -> Iterator[Served]:
    import shutil

    shutil.copy(template_db, isolated_env / "switchboard.db")
    environ = {"OPENAI_API_KEY": OPENAI_KEY}
    runtime = make_runtime(catalog, environ)
    token, _ = wire(runtime, fake_openai, None)
    ctx = ApiContext(runtime.settings, runtime_factory=lambda _: runtime, environ=environ)
    with ServerThread(build_app(ctx)) as server:
        yield Served(server.url, token, runtime)
    ctx.close()


def test_sdk_non_streaming_with_headers(served: Served, fake_openai: FakeOpenAI) -> None:
    fake_openai.configure("gpt-4o-mini", reported="gpt-4o-mini-2024-07-18")
    raw = served.client().chat.completions.with_raw_response.create(
        model=MINI, messages=HI, max_tokens=50, temperature=0
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == fake_openai.reply_text("gpt-4o-mini")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-4o-mini-2024-07-18"  # as OpenAI names it
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert raw.headers["x-switchboard-model"] == MINI
    assert raw.headers["x-switchboard-cost-usd"] != "unpriced"


def test_sdk_streaming(served: Served, fake_openai: FakeOpenAI) -> None:
    stream = served.client().chat.completions.create(
        model=MINI, messages=HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == fake_openai.reply_text("gpt-4o-mini")
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None and last.usage.completion_tokens > 0
    info = (last.model_extra or {})["x_switchboard"]
    assert (info["model"], info["fallback"]) == (MINI, False)


def test_sdk_stream_headers_and_chunks_name_the_model_after_a_failover(
    served: Served, fake_openai: FakeOpenAI
) -> None:
    fake_openai.configure("gpt-4o", default=Status(503))
    raw = served.client().chat.completions.with_raw_response.create(
        model="openai/gpt-4o", messages=HI, stream=True, extra_body={"fallbacks": [MINI]}
    )
    assert raw.headers["x-switchboard-model"] == MINI
    assert raw.headers["x-switchboard-fallback"] == "true"
    items = [i.rsplit(":", 2)[:2] for i in raw.headers["x-switchboard-attempts"].split(",")]
    assert items == [["openai/gpt-4o", "error"]] * 3 + [[MINI, "streaming"]]
    chunks = list(raw.parse())
    assert {c.model for c in chunks} == {"gpt-4o-mini"}
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == fake_openai.reply_text("gpt-4o-mini")
    info = (chunks[-1].model_extra or {})["x_switchboard"]
    assert (info["model"], info["fallback"]) == (MINI, True)
    assert info["cost_usd"] != "unpriced"


def test_sdk_errors_before_text_on_a_stream(served: Served, fake_openai: FakeOpenAI) -> None:
    client = served.client()
    with pytest.raises(openai.PermissionDeniedError) as denied:  # no anthropic key: 403
        client.chat.completions.create(model="anthropic/claude-haiku-4-5", messages=HI, stream=True)
    assert denied.value.code == "model_not_allowed"
    fake_openai.configure("gpt-4o-mini", default=Status(400))
    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(
            model=MINI, messages=HI, stream=True, extra_body={"fallbacks": []}
        )
    assert failed.value.status_code == 502


def test_sdk_models_and_errors(served: Served, fake_openai: FakeOpenAI) -> None:
    client = served.client()
    assert MINI in {m.id for m in client.models.list()}
    assert client.models.retrieve(MINI).owned_by == "openai"
    with pytest.raises(openai.NotFoundError) as found:
        client.chat.completions.create(model="openai/no-such-model", messages=HI)
    assert "no-such-model" in found.value.message
    with pytest.raises(openai.AuthenticationError):
        served.client(api_key="sb-wrong").models.list()
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MINI, messages=[])
    # A stream cut after text surfaces as an error while iterating, never as a whole answer.
    fake_openai.script("gpt-4o-mini", Reply(cut_after=2, token_delay=0.01, rst=True))
    stream = client.chat.completions.create(
        model=MINI, messages=HI, stream=True, extra_body={"fallbacks": []}
    )
    with pytest.raises(openai.APIError, match="cut off"):
        for _ in stream:
            pass


def test_client_disconnect_stops_the_request(served: Served, fake_openai: FakeOpenAI) -> None:
    fake_openai.script("gpt-4o-mini", Reply(token_delay=0.3))
    body = {"model": MINI, "messages": HI, "stream": True}
    headers = {"Authorization": f"Bearer {served.token}"}
    with (
        httpx.Client(timeout=10) as http,
        http.stream("POST", f"{served.url}/v1/chat/completions", json=body, headers=headers) as r,
    ):
        assert r.status_code == 200
        next(r.iter_lines())  # the role chunk is out; hang up while the model still talks
    deadline = time.monotonic() + 5
    while not (rows := served.rows()):
        assert time.monotonic() < deadline, "the stopped request never reached the ledger"
        time.sleep(0.05)
    assert rows[0].status == "stopped"


# --- real processes -----------------------------------------------------------------------


def _prepare_db(url: str, fake: FakeOpenAI) -> str:
    """Migrate a database, point openai at the fake, and return a gateway token."""
    engine = db.make_engine(url)
    db.upgrade_database(engine)
    sessions = db.make_session_factory(engine)
    with sessions.begin() as s:
        endpoints.add_endpoint(
            s,
            name="openai",
            kind="override",
            api_base=fake.base_url,
            actor="test",
            now=utc_now(),
            builtin_providers=("openai",),
        )
    add_user(sessions, "alice")
    with sessions.begin() as s:
        token, _ = tokens.create_token(s, username="alice", actor="test", now=utc_now())
    engine.dispose()
    return token


def _wait_for(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, (proc.stdout.read() if proc.stdout else b"").decode()
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


def _env() -> dict[str, str]:
    return {**os.environ, "OPENAI_API_KEY": OPENAI_KEY, "PYTHONPATH": str(PROJECT)}


def test_switchboard_api_command_serves_and_flushes_on_shutdown(
    isolated_env: Path, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real command, with uvicorn.run swapped for a server that stops after one call."""
    url = os.environ["SWITCHBOARD_DB_URL"]
    token = _prepare_db(url, fake_openai)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    served: dict[str, Any] = {}

    def run(app: Any, **options: Any) -> None:
        served.update(options)
        with ServerThread(app) as server:  # lifespan on, as under uvicorn.run
            client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=token, max_retries=0)
            reply = client.chat.completions.create(model=MINI, messages=HI)
            served["text"] = reply.choices[0].message.content

    monkeypatch.setattr(uvicorn, "run", run)
    out = io.StringIO()
    args = argparse.Namespace(port=8642, host="127.0.0.1", log_level="warning")
    assert api_command.cmd_api(args, CliContext(io.StringIO(), out, utc_now)) == 0
    assert served["text"] == fake_openai.reply_text("gpt-4o-mini")
    assert (served["host"], served["port"]) == ("127.0.0.1", 8642)
    assert "http://127.0.0.1:8642/v1" in out.getvalue()
    engine = db.make_engine(url)  # no flush here: shutting down must have written the row
    with db.make_session_factory(engine)() as s:
        rows = list(s.scalars(select(RequestRow)))
    engine.dispose()
    assert [(r.status, r.token_name) for r in rows] == [("success", "default")]


def test_streamlit_process_serves_v1(isolated_env: Path, fake_openai: FakeOpenAI) -> None:
    token = _prepare_db(os.environ["SWITCHBOARD_DB_URL"], fake_openai)
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    proc = subprocess.Popen(
        command, env=_env(), cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/_stcore/health", proc)
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={"model": MINI, "messages": HI},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == fake_openai.reply_text("gpt-4o-mini")
        assert r.headers["x-switchboard-model"] == MINI
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_switchboard_api_process_flushes_every_row_on_sigterm_under_load(
    isolated_env: Path, fake_openai: FakeOpenAI
) -> None:
    """40 concurrent calls to a real `switchboard api` process, SIGTERM as soon as the
    quick half is answered while the slow half is still streaming: no answer or row lost."""
    import asyncio
    import signal

    url = os.environ["SWITCHBOARD_DB_URL"]
    token = _prepare_db(url, fake_openai)
    fake_openai.configure("gpt-4o", default=Reply(token_delay=0.1))  # the slow half
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "core", "api", "--port", str(port), "--log-level", "warning"],
        env=_env(),
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    n = 40
    models = [MINI if i % 2 else "openai/gpt-4o" for i in range(n)]

    async def call(client: httpx.AsyncClient, i: int) -> str:
        body = {"model": models[i], "messages": HI, "stream": i % 4 < 2}
        response = await client.post("/v1/chat/completions", json=body)
        assert response.status_code == 200, response.text
        return response.text

    async def load() -> list[str]:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            timeout=30,
            headers={"Authorization": f"Bearer {token}"},
            limits=httpx.Limits(max_connections=n),
        ) as client:
            calls = [asyncio.create_task(call(client, i)) for i in range(n)]
            await asyncio.gather(*(c for c, m in zip(calls, models, strict=True) if m == MINI))
            proc.send_signal(signal.SIGTERM)  # right after the quick ones are answered
            assert not all(c.done() for c in calls)  # the slow ones are still streaming
            return await asyncio.gather(*calls)

    try:
        _wait_for(f"http://127.0.0.1:{port}/health", proc)
        answers = asyncio.run(load())
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # uvicorn shuts down gracefully (the app's lifespan flushes the ledger), then re-raises
    # SIGTERM, which the command turns into a normal stop.
    assert proc.returncode == 0, output.decode()
    assert b"Stopped." in output, output.decode()
    assert b"Traceback" not in output, output.decode()
    assert len(answers) == n and all(answers)
    engine = db.make_engine(url)  # read by another process: only what shutdown wrote
    with db.make_session_factory(engine)() as s:
        rows = list(s.scalars(select(RequestRow)))
    engine.dispose()
    assert len(rows) == fake_openai.count() == n
    assert sorted(r.served_model for r in rows) == sorted(models)
    assert {r.status for r in rows} == {"success"}
