"""Cached-token pricing per provider family, through the gateway to the fakes and the ledger.

Each test scripts the fake's cached usage on its real wire format, sends one request
through a real Gateway (real litellm, real SQLite), and checks the ledger row's cost
against a hand computation from the bundled price map (litellm 1.90.7) in micro-dollars.
A prompt of N words is N prompt tokens to the fakes; every answer is 10 tokens.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.accounts.secrets import load_cipher
from core.clock import utc_now
from core.config import load_settings
from core.gateway.gateway import Gateway, GatewaySettings
from core.money.catalog import load_catalog
from core.request import Caller, ChatRequest, Summary
from core.settings import endpoints
from core.store import ledger
from core.store.tables import RequestRow
from tests.conftest import add_user
from tests.fakes import FakeAnthropic, FakeGemini, FakeOpenAI, FakeProvider, Reply

PROMPT = " ".join(["word"] * 1000)  # 1000 prompt tokens
ANSWER = ["t "] * 10  # 10 completion tokens
ENVIRON = {
    "OPENAI_API_KEY": "sk-test-openai-0001",
    "ANTHROPIC_API_KEY": "sk-ant-test-0002",
    "XAI_API_KEY": "xai-test-0003",
    "GEMINI_API_KEY": "gemini-test-0004",
}


@dataclass
class Rig:
    gateway: Gateway
    sessions: sessionmaker[Session]
    caller: Caller
    openai: FakeOpenAI
    anthropic: FakeAnthropic
    xai: FakeOpenAI
    gemini: FakeGemini

    async def ask(self, model: str, content: Any = PROMPT, *, stream: bool = False) -> Summary:
        request = ChatRequest(
            caller=self.caller,
            messages=({"role": "user", "content": content},),
            model=model,
            fallbacks=(),
            stream=stream,
        )
        summary: Summary | None = None
        async for event in self.gateway.stream(request):
            summary = getattr(event, "summary", summary)
        assert summary is not None and summary.error is None, summary
        return summary

    def row(self, request_id: str) -> tuple[RequestRow, dict[str, Any]]:
        assert self.gateway.flush(10)
        with self.sessions() as s:
            row = s.scalars(select(RequestRow).where(RequestRow.id == request_id)).one()
            [attempt] = ledger.attempts_for(s, request_id)
        return row, attempt


@pytest.fixture
async def rig(sessions: sessionmaker[Session]) -> AsyncIterator[Rig]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    user = add_user(sessions, "carol", "member")
    catalog = load_catalog()
    with (
        FakeOpenAI() as openai,
        FakeAnthropic() as anthropic,
        FakeOpenAI() as xai,
        FakeGemini() as gemini,
    ):
        fakes: dict[str, FakeProvider] = {
            "openai": openai,
            "anthropic": anthropic,
            "xai": xai,
            "gemini": gemini,
        }
        with sessions.begin() as s:
            for name, fake in fakes.items():
                endpoints.add_endpoint(
                    s,
                    name=name,
                    kind="override",
                    api_base=fake.base_url,
                    models=(),
                    actor="test",
                    now=utc_now(),
                    builtin_providers=catalog.providers(),
                )
        for fake in fakes.values():
            fake.default = Reply(tokens=ANSWER)
        gateway = Gateway(
            sessions=sessions,
            catalog=catalog,
            cipher=load_cipher(load_settings()),
            environ=ENVIRON,
            settings=GatewaySettings(refresh_s=0.0, policy_ttl_s=0.0),
        )
        try:
            yield Rig(
                gateway,
                sessions,
                Caller(user.id, user.username, user.role),
                openai,
                anthropic,
                xai,
                gemini,
            )
        finally:
            await gateway.aclose()
            gateway.close()


def _cached(ttl: str | None) -> list[dict[str, Any]]:
    control = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    # A trailing space, so that two parts read as 2000 words, not 1999.
    return [{"type": "text", "text": PROMPT + " ", "cache_control": control}]


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_cached_input_is_billed_at_the_cache_read_price(rig: Rig, stream: bool):
    rig.openai.script("gpt-4o-mini", Reply(tokens=ANSWER, cached_tokens=800))
    summary = await rig.ask("openai/gpt-4o-mini", stream=stream)
    row, attempt = rig.row(summary.request_id)
    # gpt-4o-mini: $0.15 in, $0.075 cached, $0.60 out per 1M = micro-dollars per token.
    # The 800 cached tokens are part of the 1000 prompt tokens: 200 * 0.15 + 800 * 0.075.
    assert (row.prompt_tokens, row.cached_tokens, row.completion_tokens) == (1000, 800, 10)
    assert row.cost_micros == attempt["cost_micros"] == 30 + 60 + 6
    assert row.estimated is False


async def test_anthropic_five_minute_cache_writes_and_reads(rig: Rig):
    rig.anthropic.script(
        "claude-haiku-4-5", Reply(tokens=ANSWER, cached_tokens=600, cache_write_tokens=300)
    )
    summary = await rig.ask("anthropic/claude-haiku-4-5", _cached(None))
    row, attempt = rig.row(summary.request_id)
    # Anthropic sent input_tokens=100 beside 600 reads and 300 writes; litellm's prompt
    # count is their sum, and each part is billed once: claude-haiku-4-5 is $1 in, $0.10
    # a cache read, $1.25 a 5-minute cache write, $5 out.
    assert (row.prompt_tokens, row.cached_tokens, row.cache_write_tokens) == (1000, 600, 300)
    assert row.cache_write_1h_tokens == 0
    assert row.cost_micros == attempt["cost_micros"] == 100 * 1 + 60 + 375 + 50
    assert row.estimated is False


async def test_anthropic_one_hour_cache_writes_are_billed_at_twice_the_input(rig: Rig):
    rig.anthropic.script(
        "claude-haiku-4-5",
        Reply(tokens=ANSWER, cached_tokens=600, cache_write_tokens=300, cache_write_1h_tokens=300),
    )
    summary = await rig.ask("anthropic/claude-haiku-4-5", _cached("1h"))
    row, _ = rig.row(summary.request_id)
    # The stream gives no 5m/1h split; the request's only breakpoint says 1h: $2 a token.
    assert (row.cache_write_tokens, row.cache_write_1h_tokens) == (300, 300)
    assert row.cost_micros == 100 + 60 + 600 + 50
    assert row.estimated is False
    [call] = rig.anthropic.requests("claude-haiku-4-5")
    assert call.body["messages"][0]["content"][0]["cache_control"]["ttl"] == "1h"


async def test_anthropic_both_lifetimes_without_a_split_bill_the_dearer_and_say_so(rig: Rig):
    rig.anthropic.script(
        "claude-haiku-4-5",
        Reply(tokens=ANSWER, cached_tokens=600, cache_write_tokens=300, cache_write_1h_tokens=100),
    )
    content = [*_cached("1h"), *_cached(None)]  # 2000 words now
    summary = await rig.ask("anthropic/claude-haiku-4-5", content)
    row, attempt = rig.row(summary.request_id)
    # 1100 uncached input + 600 reads + 300 writes, the writes all billed as 1-hour ones.
    assert row.prompt_tokens == 2000
    assert row.cost_micros == 1100 + 60 + 600 + 50
    assert row.estimated is True and attempt["estimated"] is True


async def test_anthropic_split_from_a_whole_answer_is_billed_exactly(rig: Rig):
    from core.money.pricing import PriceBook
    from core.upstream.calls import Timeouts, Upstream

    rig.anthropic.script(
        "claude-haiku-4-5",
        Reply(tokens=ANSWER, cached_tokens=600, cache_write_tokens=300, cache_write_1h_tokens=100),
    )
    upstream = Upstream()
    try:
        # A model that cannot stream is called whole; Anthropic's whole answer has the split.
        answer = await upstream.complete(
            "anthropic/claude-haiku-4-5",
            [{"role": "user", "content": [*_cached("1h"), *_cached(None)]}],
            api_key=ENVIRON["ANTHROPIC_API_KEY"],
            api_base=rig.anthropic.base_url,
            params={"max_tokens": 100},
            timeouts=Timeouts(),
            deadline=float("inf"),
            streaming=False,
        )
    finally:
        await upstream.aclose()
    usage = answer.usage
    assert usage is not None and not usage.estimated
    assert (usage.cache_write_tokens, usage.cache_write_1h_tokens) == (300, 100)
    book = PriceBook(load_catalog(), (), loaded_at=utc_now())
    cost, _ = book.cost_micros("anthropic/claude-haiku-4-5", usage, utc_now())
    # 200 5-minute writes at $1.25 and 100 1-hour ones at $2.
    assert cost == 1100 + 60 + 250 + 200 + 50


async def test_xai_cached_input_is_billed_at_the_cache_read_price(rig: Rig):
    rig.xai.script("grok-3-mini", Reply(tokens=ANSWER, cached_tokens=800))
    summary = await rig.ask("xai/grok-3-mini")
    row, attempt = rig.row(summary.request_id)
    # grok-3-mini: $0.30 in, $0.075 cached, $0.50 out: 200 * 0.3 + 800 * 0.075 + 10 * 0.5.
    assert (row.provider, row.prompt_tokens, row.cached_tokens) == ("xai", 1000, 800)
    assert row.cost_micros == attempt["cost_micros"] == 60 + 60 + 5


@pytest.mark.parametrize("stream", [False, True])
async def test_gemini_cached_input_is_billed_at_the_cache_read_price(rig: Rig, stream: bool):
    rig.gemini.script("gemini-2.5-flash", Reply(tokens=ANSWER, cached_tokens=800))
    summary = await rig.ask("gemini/gemini-2.5-flash", stream=stream)
    row, attempt = rig.row(summary.request_id)
    # Gemini counts cachedContentTokenCount inside promptTokenCount. gemini-2.5-flash:
    # $0.30 in, $0.03 cached, $2.50 out: 200 * 0.3 + 800 * 0.03 + 10 * 2.5.
    assert (row.provider, row.prompt_tokens, row.cached_tokens) == ("gemini", 1000, 800)
    assert row.cost_micros == attempt["cost_micros"] == 60 + 24 + 25
    [call] = rig.gemini.requests("gemini-2.5-flash")
    assert call.path.endswith(":streamGenerateContent")  # whole answers are streamed too
