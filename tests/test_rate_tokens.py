"""A tokens-per-minute limit counts the tokens a request really used, not its estimate."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.clock import utc_now
from core.errors import RateLimited
from core.money import ratelimits
from core.store.tables import RateWindow
from tests.gateway_support import GPT

ANSWER = ["word "] * 40  # 40 completion tokens


def _window_tokens(rig) -> int:
    with rig.sessions() as s:
        return sum(w.tokens for w in s.scalars(select(RateWindow)))


async def test_completion_tokens_count_against_the_minute(rig):
    with rig.sessions.begin() as s:
        ratelimits.set_rate_limit(s, rig.user.id, None, 50, "t", utc_now())
    rig.openai.configure("gpt-4o", tokens=ANSWER)
    done = await rig.gateway.complete(rig.request(GPT, fallbacks=()))
    rig.rows()  # the writer settles the minute with the ledger rows
    used = done.summary.usage.prompt_tokens + done.summary.usage.completion_tokens
    assert done.summary.usage.completion_tokens == 40
    assert _window_tokens(rig) == used
    # The prompt alone (~10 tokens) would fit; with the first answer counted it does not.
    with pytest.raises(RateLimited) as info:
        await rig.gateway.complete(rig.request(GPT, fallbacks=()))
    assert info.value.retry_after_s >= 1 and rig.openai.count("gpt-4o") == 1


async def test_an_overestimated_prompt_gives_tokens_back(rig):
    with rig.sessions.begin() as s:
        ratelimits.set_rate_limit(s, rig.user.id, None, 10_000, "t", utc_now())
    rig.openai.configure("gpt-4o", tokens=["ok"])
    # 400 characters without spaces: estimated at ~100 tokens, counted by the fake as one.
    prompt = ({"role": "user", "content": "x" * 400},)
    estimate = rig.gateway.estimate(rig.request(GPT, messages=prompt)).prompt_tokens
    done = await rig.gateway.complete(rig.request(GPT, fallbacks=(), messages=prompt))
    rig.rows()
    used = done.summary.usage.prompt_tokens + done.summary.usage.completion_tokens
    assert used < estimate and _window_tokens(rig) == used
