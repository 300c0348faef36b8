"""Issue 20, finding 1: a key echoed by the upstream never reaches the caller or the database.

The fake provider plays an upstream (or corporate proxy) that echoes the credentials it
received on the wire (echo mode, tests/fakes/echo.py): in plain answers, streamed with
the key split across chunks, in reasoning, in a tool call's name and arguments, in an
error body and in a response header. The key must appear in no response, page, table,
database or WAL file, or log line.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session, sessionmaker

from core.accounts import keys
from core.accounts.scrubber import Scrubber
from core.accounts.secrets import mask_secret
from core.clock import utc_now
from core.settings import endpoints
from core.store.tables import ChatMessage
from tests.conftest import add_user
from tests.fakes import FakeAnthropic, FakeOpenAI, Reply, Status, echo
from tests.fakes.content import ToolCall
from tests.fakes.echo import KEY
from tests.support.pages import OPENAI_KEY as PAGE_KEY
from tests.support.pages import AppFakes, signed_in, texts
from tests.test_api import (
    ANTHROPIC_KEY,
    HAIKU,
    HI,
    MINI,
    OPENAI_KEY,
    Api,
    api,
    catalog,
    sse_events,
    template_db,
)
from ui import state

__all__ = ["api", "catalog", "template_db"]  # fixtures this module borrows


def _split(secret: str, at: int) -> list[str]:
    return ["Your key is ", secret[:at], secret[at:], " ok"]


# --- the scrubber itself --------------------------------------------------------------


def test_a_secret_split_at_every_position_is_masked_and_nothing_else_changes() -> None:
    secret = OPENAI_KEY
    scrubber = Scrubber([secret])
    for at in range(1, len(secret)):
        for pieces in (_split(secret, at), [*_split(secret, at)[:2], *secret[at:], " ok"]):
            stream = scrubber.stream()
            out = "".join(stream.feed(p) for p in pieces) + stream.flush()
            assert out == f"Your key is {mask_secret(secret)} ok", at


def test_it_holds_back_only_a_tail_that_could_start_a_secret() -> None:
    stream = Scrubber(["sk-abcdefghijklmnop"]).stream()
    assert stream.feed("plain words.") == "plain words."  # nothing held: no delay
    assert stream.feed(" Its") == " It"  # an "s" could begin "sk-"
    assert stream.feed(" then sk-ab") == "s then "  # could be the key's start
    assert stream.feed("c but not") == "sk-abc but not"
    assert stream.flush() == ""
    held = Scrubber(["sk-abcdefghijklmnop"]).stream()
    assert held.feed("ends with sk-a") == "ends with "
    assert held.flush() == "sk-a"  # the stream ended: it was no key


def test_short_or_missing_secrets_are_not_scrubbed() -> None:
    scrubber = Scrubber([None, "", "ollama"])
    assert not scrubber
    assert scrubber.stream().feed("ollama says hi") == "ollama says hi"
    assert "sk-" not in repr(Scrubber([OPENAI_KEY]))


# --- through the API ------------------------------------------------------------------


def _everything_stored(api: Api) -> str:
    """Every row of every table, as text, after the ledger has been written."""
    api.ledger()
    dump: list[str] = []
    with api.runtime.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            dump.extend(repr(tuple(row)) for row in conn.execute(text(f'SELECT * FROM "{table}"')))
    return "\n".join(dump)


def _streamed(body: str) -> str:
    return "".join(
        e["choices"][0]["delta"].get("content") or ""
        for e in sse_events(body)
        if isinstance(e, dict) and e.get("choices")
    )


def _files(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.is_file())


def _assert_nowhere(secret: str, api: Api, data: Path, *outputs: str) -> None:
    for out in outputs:
        assert secret not in out
    assert secret not in _everything_stored(api)
    # The database, its -wal and -shm files: the bytes on disk, not only what SQL shows.
    assert secret.encode() not in _files(data)


def _echo_split(at: int) -> list[str]:
    """Reply pieces that repeat the key the fake received, split at `at` across two."""
    return ["Your key is ", echo(KEY, 0, at), echo(KEY, at), " ok"]


def _masked(secret: str) -> str:
    return f"Your key is {mask_secret(secret)} ok"


def _echoing_reply(at: int) -> Reply:
    """An upstream that echoes the key it received in its text, reasoning and a tool call
    (the name and the arguments, each split across stream pieces)."""
    call = ToolCall(
        "lookup_" + echo(KEY, 0, at) + echo(KEY, at),
        '{"auth": "Bearer ' + echo(KEY) + '"}',
        id="call_echo",
        fragments=5,
    )
    return Reply(tokens=_echo_split(at), reasoning=_echo_split(at), tool_calls=[call])


TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


def _answer(r: httpx.Response, stream: bool) -> tuple[str, str, list[dict[str, Any]]]:
    """(text, reasoning, tool calls' functions) of a whole or streamed /v1 answer."""
    if not stream:
        message = r.json()["choices"][0]["message"]
        calls = [c["function"] for c in message.get("tool_calls") or ()]
        return message["content"] or "", message.get("reasoning_content") or "", calls
    deltas = [
        e["choices"][0]["delta"]
        for e in sse_events(r.text)
        if isinstance(e, dict) and e.get("choices")
    ]
    merged: dict[int, dict[str, Any]] = {}
    for d in deltas:
        for c in d.get("tool_calls") or ():
            f = merged.setdefault(c["index"], {"name": "", "arguments": ""})
            f["name"] += c.get("function", {}).get("name") or ""
            f["arguments"] += c.get("function", {}).get("arguments") or ""
    text = "".join(d.get("content") or "" for d in deltas)
    return text, "".join(d.get("reasoning_content") or "" for d in deltas), list(merged.values())


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("at", [1, 3, 17, len(OPENAI_KEY) - 1])
async def test_a_key_the_upstream_echoes_from_the_wire_is_masked_everywhere(
    api: Api,
    fake_openai: FakeOpenAI,
    isolated_env: Path,
    caplog: pytest.LogCaptureFixture,
    stream: bool,
    at: int,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_openai.script("gpt-4o-mini", _echoing_reply(at))
    body = {"model": MINI, "messages": HI, "tools": [TOOL], "stream": stream}
    r = await api.chat(body)
    assert r.status_code == 200, r.text
    assert fake_openai.requests()[-1].key_last4 == OPENAI_KEY[-4:]  # the key it echoed
    text, reasoning, calls = _answer(r, stream)
    # Masked, not dropped: the echo arrived, and only the key in it changed.
    assert text == reasoning == _masked(OPENAI_KEY)
    assert calls == [
        {
            "name": f"lookup_{mask_secret(OPENAI_KEY)}",
            "arguments": f'{{"auth": "Bearer {mask_secret(OPENAI_KEY)}"}}',
        }
    ]
    _assert_nowhere(OPENAI_KEY, api, isolated_env, r.text, str(r.headers), caplog.text)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_a_key_echoed_on_the_anthropic_wire_is_masked_in_thinking_blocks_too(
    api: Api,
    fake_anthropic: FakeAnthropic,
    isolated_env: Path,
    caplog: pytest.LogCaptureFixture,
    stream: bool,
) -> None:
    """Claude's key arrives as x-api-key; its thinking comes back as reasoning_content and
    as whole thinking blocks, and a tool call follows."""
    caplog.set_level(logging.DEBUG)
    api.environ["ANTHROPIC_API_KEY"] = ANTHROPIC_KEY
    fake_anthropic.script(HAIKU, _echoing_reply(13))
    body = {
        "model": f"anthropic/{HAIKU}",
        "messages": HI,
        "tools": [TOOL],
        "reasoning_effort": "low",
        "fallbacks": [],
        "stream": stream,
    }
    r = await api.chat(body)
    assert r.status_code == 200, r.text
    assert fake_anthropic.requests(HAIKU)[-1].key_last4 == ANTHROPIC_KEY[-4:]
    text, reasoning, calls = _answer(r, stream)
    assert text == reasoning == _masked(ANTHROPIC_KEY)
    assert calls[0]["arguments"] == f'{{"auth": "Bearer {mask_secret(ANTHROPIC_KEY)}"}}'
    if stream:
        events = [e for e in sse_events(r.text) if isinstance(e, dict) and e.get("choices")]
        deltas = [e["choices"][0]["delta"] for e in events]
        blocks = [b for d in deltas for b in d.get("thinking_blocks") or ()]
    else:
        blocks = r.json()["choices"][0]["message"]["thinking_blocks"]
    assert [b["thinking"] for b in blocks] == [_masked(ANTHROPIC_KEY)]
    _assert_nowhere(ANTHROPIC_KEY, api, isolated_env, r.text, str(r.headers), caplog.text)


async def test_an_endpoints_key_echoed_from_the_wire_is_masked(
    api: Api, isolated_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An admin's OpenAI-compatible endpoint (a corporate vLLM, say) with its own key."""
    caplog.set_level(logging.DEBUG)
    secret = "corp-endpoint-key-0123456789abcdef"
    now = utc_now()
    with FakeOpenAI() as corp, api.runtime.sessions.begin() as s:
        providers = api.runtime.catalog.providers()
        endpoints.add_endpoint(
            s, name="corp", kind="openai-compatible", api_base=corp.base_url,
            models=["qwen"], actor="test", now=now, builtin_providers=providers,
        )  # fmt: skip
        keys.set_key(
            s, api.runtime.cipher, owner_kind="user", owner_id=api.user_id, provider="corp",
            secret=secret, actor="test", now=now, known_providers=[*providers, "corp"],
        )  # fmt: skip
        s.commit()
        corp.accepted_keys = frozenset({secret})  # it really arrived on the wire
        failure = Status(400, message=echo("authorization"), headers={"x-echo": echo(KEY)})
        corp.script("qwen", _echoing_reply(5), _echoing_reply(30), failure)
        outputs: list[str] = []
        for stream in (False, True):
            body = {"model": "corp/qwen", "messages": HI, "tools": [TOOL], "stream": stream}
            r = await api.chat(body)
            assert r.status_code == 200, r.text
            text, reasoning, _ = _answer(r, stream)
            assert text == reasoning == _masked(secret)
            outputs += [r.text, str(r.headers)]
        r = await api.chat({"model": "corp/qwen", "messages": HI, "fallbacks": []})
        assert r.status_code == 502 and "Bearer " + mask_secret(secret) in r.text, r.text
        assert [q.outcome for q in corp.requests()] == ["ok", "ok", "status:400"]
    _assert_nowhere(secret, api, isolated_env, *outputs, r.text, str(r.headers), caplog.text)


async def test_the_callers_own_token_echoed_back_is_masked(
    api: Api, fake_openai: FakeOpenAI, isolated_env: Path
) -> None:
    fake_openai.script("gpt-4o-mini", Reply(tokens=_split(api.token, 5)))
    r = await api.chat({"model": MINI, "messages": HI, "stream": True})
    assert r.status_code == 200, r.text
    assert _streamed(r.text) == f"Your key is {mask_secret(api.token)} ok"
    _assert_nowhere(api.token, api, isolated_env, r.text)


@pytest.mark.parametrize("code", [400, 503])
async def test_an_echoed_key_in_an_error_body_and_header_is_masked(
    api: Api,
    fake_openai: FakeOpenAI,
    isolated_env: Path,
    caplog: pytest.LogCaptureFixture,
    code: int,
) -> None:
    caplog.set_level(logging.DEBUG)
    # What arrived on the wire (the whole Authorization header, and the key alone in a
    # response header), plus the caller's gateway token, which never travels upstream.
    said = f"request had Authorization: {echo('authorization')} and token {api.token}"
    failure = Status(code, message=said, headers={"x-echo-authorization": echo(KEY)})
    for stream in (False, True):
        fake_openai.script("gpt-4o-mini", *[failure] * 10)
        r = await api.chat({"model": MINI, "messages": HI, "fallbacks": [], "stream": stream})
        assert r.status_code >= 400, r.text
        assert fake_openai.requests()[-1].key_last4 == OPENAI_KEY[-4:]
        for secret in (OPENAI_KEY, api.token):
            _assert_nowhere(secret, api, isolated_env, r.text, str(r.headers), caplog.text)


def test_an_echoed_key_never_reaches_the_chat_page_or_its_stored_messages(
    sessions: sessionmaker[Session],
    app_fakes: AppFakes,
    isolated_env: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    add_user(sessions, "alice")
    # The page's upstream echoes the key it received, in its text and its reasoning.
    app_fakes.openai.default = Reply(tokens=_echo_split(7), reasoning=_echo_split(11))
    at = signed_in("alice", "app_pages/chat.py")
    at.chat_input(key=state.CHAT_INPUT).set_value("What key did I send?").run()
    assert not at.exception, at.exception
    assert app_fakes.openai.requests()[-1].key_last4 == PAGE_KEY[-4:]
    shown = at.chat_message[1].markdown[0].value
    assert shown == _masked(PAGE_KEY)
    assert PAGE_KEY not in texts(at)
    with sessions() as s:
        stored = [m.content for m in s.scalars(select(ChatMessage))]
    assert _masked(PAGE_KEY) in stored
    assert not any(PAGE_KEY in m for m in stored)
    assert PAGE_KEY.encode() not in _files(isolated_env)
    assert PAGE_KEY not in caplog.text
