"""Issue 20, finding 1: a key echoed by the upstream never reaches the caller or the database.

The fake provider plays an upstream (or corporate proxy) that echoes the request's
credentials: in plain answers, streamed with the key split across chunks, in an error
body and in a response header. The key must appear in no response, ledger table, WAL
file or log line.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session, sessionmaker

from core.accounts.scrubber import Scrubber
from core.accounts.secrets import mask_secret
from core.store.tables import ChatMessage
from tests.conftest import add_user
from tests.fakes import FakeOpenAI, Reply, Status
from tests.support.pages import OPENAI_KEY as PAGE_KEY
from tests.support.pages import AppFakes, signed_in, texts
from tests.test_api import HI, MINI, OPENAI_KEY, Api, api, catalog, sse_events, template_db
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


async def test_an_echoed_key_is_masked_in_a_whole_answer(
    api: Api, fake_openai: FakeOpenAI, isolated_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_openai.script("gpt-4o-mini", Reply(tokens=_split(OPENAI_KEY, 9)))
    r = await api.chat({"model": MINI, "messages": HI})
    assert r.status_code == 200, r.text
    assert fake_openai.requests()[-1].key_last4 == OPENAI_KEY[-4:]  # the key it echoes
    answer = r.json()["choices"][0]["message"]["content"]
    assert answer == f"Your key is {mask_secret(OPENAI_KEY)} ok"
    _assert_nowhere(OPENAI_KEY, api, isolated_env, r.text, str(r.headers), caplog.text)


@pytest.mark.parametrize("at", [1, 3, 17, len(OPENAI_KEY) - 1])
async def test_an_echoed_key_split_across_stream_chunks_is_masked(
    api: Api, fake_openai: FakeOpenAI, isolated_env: Path, at: int
) -> None:
    fake_openai.script("gpt-4o-mini", Reply(tokens=_split(OPENAI_KEY, at)))
    r = await api.chat({"model": MINI, "messages": HI, "stream": True})
    assert r.status_code == 200, r.text
    assert _streamed(r.text) == f"Your key is {mask_secret(OPENAI_KEY)} ok"
    _assert_nowhere(OPENAI_KEY, api, isolated_env, r.text)


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
    echo = f"request had Authorization: Bearer {OPENAI_KEY} and token {api.token}"
    failure = Status(code, message=echo, headers={"x-echo-authorization": OPENAI_KEY})
    for stream in (False, True):
        fake_openai.script("gpt-4o-mini", *[failure] * 10)
        r = await api.chat({"model": MINI, "messages": HI, "fallbacks": [], "stream": stream})
        assert r.status_code >= 400, r.text
        for secret in (OPENAI_KEY, api.token):
            _assert_nowhere(secret, api, isolated_env, r.text, str(r.headers), caplog.text)


def test_an_echoed_key_never_reaches_the_chat_page_or_its_stored_messages(
    sessions: sessionmaker[Session], app_fakes: AppFakes, isolated_env: Path
) -> None:
    add_user(sessions, "alice")
    app_fakes.openai.configure("gpt-4o-mini", tokens=_split(PAGE_KEY, 7))
    at = signed_in("alice", "app_pages/chat.py")
    at.chat_input(key=state.CHAT_INPUT).set_value("What key did I send?").run()
    assert not at.exception, at.exception
    shown = at.chat_message[1].markdown[0].value
    assert shown == f"Your key is {mask_secret(PAGE_KEY)} ok"
    assert PAGE_KEY not in texts(at)
    with sessions() as s:
        stored = [m.content for m in s.scalars(select(ChatMessage))]
    assert f"Your key is {mask_secret(PAGE_KEY)} ok" in stored
    assert PAGE_KEY.encode() not in _files(isolated_env)
