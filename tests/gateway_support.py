"""Wiring a real Gateway (real SQLite, real litellm) to fake providers on loopback."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.accounts.auth import UserInfo
from core.accounts.secrets import Cipher, load_cipher
from core.clock import utc_now
from core.config import load_settings
from core.gateway.gateway import Gateway, GatewaySettings
from core.gateway.retry import RetryPolicy
from core.money.catalog import Catalog, load_catalog
from core.request import Caller, ChatRequest, Done, Summary, TextDelta
from core.settings import endpoints, routes
from core.store import ledger
from core.store.tables import AttemptRow, RequestRow
from tests.conftest import add_user
from tests.fakes import FakeAnthropic, FakeOpenAI

GPT = "openai/gpt-4o"
MINI = "openai/gpt-4o-mini"
HAIKU = "anthropic/claude-3-haiku-20240307"
OPENAI_KEY = "sk-test-openai-key-0001"
ANTHROPIC_KEY = "sk-ant-test-key-0002"


class FakeClock:
    """A clock tests move by hand; starts at real now so budget periods look normal."""

    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.now += timedelta(seconds=seconds)


@dataclass
class Sleeps:
    """Records backoff waits instead of sleeping, so retry tests run instantly."""

    delays: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@dataclass
class Rig:
    gateway: Gateway
    sessions: sessionmaker[Session]
    openai: FakeOpenAI
    anthropic: FakeAnthropic
    user: UserInfo
    clock: FakeClock
    sleeps: Sleeps
    catalog: Catalog
    cipher: Cipher

    @property
    def caller(self) -> Caller:
        return Caller(self.user.id, self.user.username, self.user.role, None)

    def request(self, model: str = GPT, *, stream: bool = False, **kw: Any) -> ChatRequest:
        messages = kw.pop("messages", ({"role": "user", "content": "Say hello to the team"},))
        return ChatRequest(
            caller=self.caller, messages=tuple(messages), model=model, stream=stream, **kw
        )

    def point_openai_at(self, api_base: str) -> None:
        """Override the built-in openai provider's base URL (e.g. a dead or silent port)."""
        with self.sessions.begin() as s:
            endpoints.update_endpoint(
                s,
                name="openai",
                kind="override",
                api_base=api_base,
                actor="t",
                now=utc_now(),
                builtin_providers=self.catalog.providers(),
            )
        self.gateway.refresh()

    def set_route(self, models: Sequence[str], **options: Any) -> None:
        with self.sessions.begin() as s:
            routes.set_route(
                s,
                scope="org",
                scope_id=0,
                models=models,
                known_model=lambda m: True,
                actor="test",
                now=utc_now(),
                options=routes.RouteOptions(**options),
            )
        self.gateway.refresh()

    def rows(self) -> list[RequestRow]:
        assert self.gateway.flush(10)
        with self.sessions() as s:
            return list(s.scalars(select(RequestRow).order_by(RequestRow.at)))

    def attempts(self, request_id: str) -> list[dict[str, Any]]:
        with self.sessions() as s:
            return ledger.attempts_for(s, request_id)

    def attempt_rows(self) -> list[AttemptRow]:
        with self.sessions() as s:
            return list(s.scalars(select(AttemptRow)))


async def collect(gateway: Gateway, request: ChatRequest) -> tuple[str, Summary]:
    text = ""
    summary: Summary | None = None
    async for event in gateway.stream(request):
        if isinstance(event, TextDelta):
            text += event.text
        elif isinstance(event, Done):
            summary = event.summary
    assert summary is not None
    return text, summary


@pytest.fixture
async def rig(sessions: sessionmaker[Session]) -> AsyncIterator[Rig]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    user = add_user(sessions, "dana", "member")
    catalog = load_catalog()
    cipher = load_cipher(load_settings())
    clock = FakeClock()
    sleeps = Sleeps()
    with FakeOpenAI() as fake_openai, FakeAnthropic() as fake_anthropic:
        with sessions.begin() as s:
            builtins = catalog.providers()
            for name, fake in (("openai", fake_openai), ("anthropic", fake_anthropic)):
                endpoints.add_endpoint(
                    s,
                    name=name,
                    kind="override",
                    api_base=fake.base_url,
                    models=(),
                    actor="test",
                    now=utc_now(),
                    builtin_providers=builtins,
                )
        gateway = Gateway(
            sessions=sessions,
            catalog=catalog,
            cipher=cipher,
            clock=clock,
            sleep=sleeps,
            environ={"OPENAI_API_KEY": OPENAI_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY},
            settings=GatewaySettings(
                retry=RetryPolicy(max_retries=2), refresh_s=0.0, policy_ttl_s=0.0
            ),
        )
        try:
            yield Rig(
                gateway, sessions, fake_openai, fake_anthropic, user, clock, sleeps, catalog, cipher
            )
        finally:
            await gateway.aclose()  # the test's loop is still running here
            gateway.close()
