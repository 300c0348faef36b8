"""Gateway behaviour against fake providers on loopback, through real litellm and SQLite."""

from __future__ import annotations

import asyncio
from decimal import ROUND_HALF_UP, Decimal

import pytest

from core.errors import AllModelsFailed, ContentRefused, ContextTooLong, NoKey, NotFound
from core.gateway.gateway import Gateway
from core.request import STATUS_FALLBACK, STATUS_SUCCESS
from tests.fakes import ContentFilter, ContextLength, Reply, Reset, Status
from tests.gateway_support import GPT, HAIKU, MINI, OPENAI_KEY, collect


async def test_success_is_recorded_with_exact_cost(rig):
    rig.openai.configure("gpt-4o", tokens=["Hello ", "team"])
    done = await rig.gateway.complete(rig.request(GPT))
    assert done.text == "Hello team"
    s = done.summary
    assert (s.status, s.model, s.provider) == (STATUS_SUCCESS, GPT, "openai")
    assert not s.fallback_used
    # gpt-4o: $2.50 in, $10 out per 1M tokens = 2.5 and 10 micro-dollars per token.
    exact = Decimal("2.5") * s.usage.prompt_tokens + 10 * s.usage.completion_tokens
    expected = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    assert s.cost_micros == expected and s.priced
    [row] = rig.rows()
    assert (row.id, row.status, row.served_model, row.cost_micros) == (
        s.request_id,
        "success",
        GPT,
        expected,
    )
    assert rig.openai.requests("gpt-4o")[0].key_last4 == OPENAI_KEY[-4:]


@pytest.mark.parametrize("stream", [False, True])
async def test_each_attempt_row_has_its_own_cached_reasoning_tokens_and_price(rig, stream):
    """A failed gpt-4o attempt and a served mini attempt, each priced by its own price."""
    from datetime import timedelta

    from core.money.pricing import set_price_override

    with rig.sessions.begin() as s:
        override = set_price_override(
            s,
            MINI,
            Decimal("1"),
            Decimal("2"),
            rig.clock.now - timedelta(days=1),
            actor="test",
            now=rig.clock.now,
            known_model=lambda m: True,
        )
    rig.gateway.refresh()
    rig.openai.script("gpt-4o", Status(400))
    rig.openai.script("gpt-4o-mini", Reply(cached_tokens=3, reasoning_tokens=2))
    request = rig.request(
        GPT,
        stream=stream,
        fallbacks=(MINI,),
        messages=({"role": "user", "content": "one two three four five"},),
    )
    if stream:
        _, s = await collect(rig.gateway, request)
    else:
        s = (await rig.gateway.complete(request)).summary
    assert s.model == MINI
    [row] = rig.rows()  # flushes the ledger writer
    failed, served = rig.attempts(s.request_id)
    assert (failed["model"], failed["outcome"]) == (GPT, "error")
    assert (failed["cached_tokens"], failed["reasoning_tokens"]) == (0, 0)
    assert failed["price_version"] == rig.catalog.price_version  # priced, at 0 tokens
    assert (served["model"], served["outcome"]) == (MINI, "ok")
    assert (served["cached_tokens"], served["reasoning_tokens"]) == (3, 2)
    assert served["price_version"] == f"override:{override.id}"
    # The override bills cached and reasoning tokens at its plain input and output prices.
    assert served["cost_micros"] == served["prompt_tokens"] * 1 + served["completion_tokens"] * 2
    assert (row.cached_tokens, row.reasoning_tokens, row.price_version) == (
        3,
        2,
        f"override:{override.id}",
    )


@pytest.mark.parametrize("code", [408, 429, 500, 502, 503, 504])
async def test_transient_errors_retry_the_same_model_with_backoff(rig, code):
    rig.openai.script("gpt-4o", Status(code), Status(code))
    done = await rig.gateway.complete(rig.request(GPT, fallbacks=()))
    assert done.summary.status == STATUS_SUCCESS
    assert rig.openai.count("gpt-4o") == 3
    assert len(rig.sleeps.delays) == 2
    assert all(0 <= d <= 0.5 for d in rig.sleeps.delays)  # jittered, exponential ceiling
    outcomes = [a.outcome for a in done.summary.attempts]
    assert outcomes == ["error", "error", "ok"]


async def test_retry_after_is_honoured_up_to_the_cap(rig):
    rig.openai.script("gpt-4o", Status(429, retry_after=3), Status(429, retry_after=999))
    await rig.gateway.complete(rig.request(GPT, fallbacks=()))
    assert rig.sleeps.delays == [3.0, 10.0]


async def test_connection_reset_and_refused_are_transient(rig):
    rig.openai.script("gpt-4o", Reset())
    done = await rig.gateway.complete(rig.request(GPT, fallbacks=()))
    assert done.summary.status == STATUS_SUCCESS and rig.openai.count("gpt-4o") == 2


async def test_exhausted_retries_fail_over_to_the_next_model(rig):
    rig.openai.script("gpt-4o", Status(503), Status(503), Status(503))
    done = await rig.gateway.complete(rig.request(GPT, fallbacks=(HAIKU,)))
    s = done.summary
    assert (s.status, s.model, s.fallback_used) == (STATUS_FALLBACK, HAIKU, True)
    assert rig.openai.count("gpt-4o") == 3 and rig.anthropic.count() == 1
    assert [a.model for a in s.attempts] == [GPT, GPT, GPT, HAIKU]


@pytest.mark.parametrize("code", [400, 404])
async def test_client_errors_fail_over_without_retry(rig, code):
    rig.openai.script("gpt-4o", Status(code))
    done = await rig.gateway.complete(rig.request(GPT, fallbacks=(HAIKU,)))
    assert done.summary.model == HAIKU
    assert rig.openai.count("gpt-4o") == 1 and rig.sleeps.delays == []


@pytest.mark.parametrize("code", [401, 403])
async def test_auth_failure_fails_over(rig, code):
    rig.openai.script("gpt-4o", Status(code))
    done = await rig.gateway.complete(rig.request(GPT, fallbacks=(HAIKU,)))
    assert done.summary.model == HAIKU and rig.openai.count("gpt-4o") == 1
    assert rig.sleeps.delays == []  # an auth failure is never retried on the same key
    first = done.summary.attempts[0]
    assert (first.model, first.outcome, first.status_code) == (GPT, "error", code)


async def test_context_length_skips_models_that_cannot_fit(rig):
    rig.openai.script("gpt-4o", ContextLength(limit=8192, tokens=150_000))
    # gpt-4o-mini has the same 128k window, so it is skipped without a call; haiku fits 200k.
    done = await rig.gateway.complete(rig.request(GPT, fallbacks=(MINI, HAIKU)))
    assert done.summary.model == HAIKU
    assert rig.openai.count("gpt-4o-mini") == 0
    assert [a.outcome for a in done.summary.attempts] == ["error", "skipped-context", "ok"]


async def test_context_too_long_everywhere_is_a_clear_error(rig):
    rig.openai.script("gpt-4o", ContextLength(limit=8192, tokens=900_000))
    with pytest.raises(ContextTooLong, match="900000 tokens"):
        await rig.gateway.complete(rig.request(GPT, fallbacks=(MINI, HAIKU)))


async def test_content_refusal_is_returned_without_trying_others(rig):
    rig.openai.script("gpt-4o", ContentFilter())
    with pytest.raises(ContentRefused, match="refused"):
        await rig.gateway.complete(rig.request(GPT, fallbacks=(HAIKU,)))
    assert rig.anthropic.count() == 0


async def test_content_refusal_can_fail_over_when_the_route_says_so(rig):
    rig.set_route([GPT, HAIKU], content_refusal_failover=True)
    rig.openai.script("gpt-4o", ContentFilter())
    done = await rig.gateway.complete(rig.request("auto"))
    assert done.summary.model == HAIKU


async def test_no_key_skips_the_provider_and_says_where_to_add_one(rig):
    keyless = Gateway(
        sessions=rig.sessions,
        catalog=rig.catalog,
        cipher=rig.cipher,
        clock=rig.clock,
        sleep=rig.sleeps,
        environ={},  # no env keys at all
        settings=rig.gateway.settings,
    )
    try:
        with pytest.raises(NoKey, match="Providers & keys"):
            await keyless.complete(rig.request(GPT, fallbacks=(HAIKU,)))
    finally:
        await keyless.aclose()
        keyless.close()  # writes its ledger rows
    assert rig.openai.count() == 0 and rig.anthropic.count() == 0
    [row] = rig.rows()
    assert row.status == "no-key"
    assert [a["error_message"] for a in rig.attempts(row.id)] == [
        "no key for openai",
        "no key for anthropic",
    ]


async def test_unknown_model_is_not_found(rig):
    with pytest.raises(NotFound, match="switchboard models"):
        await rig.gateway.complete(rig.request("openai/gpt-99"))


async def test_every_model_failing_lists_the_attempts(rig):
    rig.openai.script("gpt-4o", Status(400))
    rig.anthropic.script(None, Status(400))
    with pytest.raises(AllModelsFailed, match="openai/gpt-4o") as info:
        await rig.gateway.complete(rig.request(GPT, fallbacks=(HAIKU,)))
    assert HAIKU in info.value.message
    [row] = rig.rows()
    # No model answered: the ledger files it under the provider first tried, for error rates.
    assert (row.served_model, row.provider, row.status) == (None, "openai", "failed")


async def test_burst_of_failures_does_not_become_a_burst_of_retries(rig):
    rig.openai.configure("gpt-4o", default=Status(503))
    requests = [rig.request(GPT, fallbacks=()) for _ in range(40)]
    results = await asyncio.gather(
        *(rig.gateway.complete(r) for r in requests), return_exceptions=True
    )
    assert all(isinstance(r, Exception) for r in results)
    calls = rig.openai.count("gpt-4o")
    # Unbounded retries would be 40 x 3 = 120 calls; the breaker cuts them off once it opens.
    assert calls < 60, calls


async def test_connection_refused_is_retried_then_fails_over(rig):
    from tests.fakes import refused_url

    with refused_url() as dead:
        rig.point_openai_at(dead)
        done = await rig.gateway.complete(rig.request(GPT, fallbacks=(HAIKU,)))
    s = done.summary
    assert s.model == HAIKU
    assert [a.outcome for a in s.attempts] == ["error", "error", "error", "ok"]
    assert len(rig.sleeps.delays) == 2  # refused is transient: two backed-off retries


@pytest.mark.parametrize(("setting", "sdk_expected"), [(None, False), ("false", True)])
async def test_openai_calls_use_litellms_own_http_unless_the_operator_opts_out(
    rig, monkeypatch, setting, sdk_expected
):
    from core.upstream.litellm_calls import OWN_HTTP_ENV, prefer_litellm_own_http

    monkeypatch.delenv(OWN_HTTP_ENV, raising=False)
    if setting is not None:
        monkeypatch.setenv(OWN_HTTP_ENV, setting)
    prefer_litellm_own_http()  # as the first litellm call of a process does
    rig.openai.configure("gpt-4o", tokens=["Hello"])
    done = await rig.gateway.complete(rig.request(GPT, fallbacks=()))
    text, _ = await collect(rig.gateway, rig.request(GPT, stream=True, fallbacks=()))
    assert done.text == text == "Hello"
    # The OpenAI SDK announces itself with x-stainless-* headers; litellm's handler does not.
    sent = rig.openai.requests("gpt-4o")
    assert [("x-stainless-lang" in r.headers) for r in sent] == [sdk_expected] * 2
