"""A hard budget's hold bounds what the provider will really count, whatever the script."""

from __future__ import annotations

import pytest

from core.clock import utc_now
from core.errors import BudgetExceeded
from core.money import budgets, pricing
from tests.gateway_support import GPT, MINI

# 12,000 characters of Chinese: a 4-characters-per-token guess says ~3,000 tokens, real
# tokenizers (and the fake) count ~12,000.
CHINESE = "预算不能超支" * 2_000
MAX_OUT = 10  # gpt-4o: $2.50 in, $10 out per 1M tokens, so the output adds at most $0.0001


def _budget(rig, micros: int) -> None:
    with rig.sessions.begin() as s:
        budgets.set_budget(s, "user", str(rig.user.id), micros, True, "t", utc_now())


def _request(rig):
    return rig.request(
        GPT, fallbacks=(), max_tokens=MAX_OUT, messages=({"role": "user", "content": CHINESE},)
    )


def test_the_bound_covers_text_the_estimate_undercounts():
    messages = ({"role": "user", "content": CHINESE},)
    assert pricing.estimate_prompt_tokens(messages) < 3_100
    assert pricing.prompt_token_bound(messages) >= 3 * len(CHINESE)  # UTF-8 bytes
    english = ({"role": "user", "content": "Say hello to the team"},)
    assert pricing.prompt_token_bound(english) >= pricing.estimate_prompt_tokens(english)


async def test_a_prompt_that_would_overspend_is_refused_before_it_is_sent(rig):
    # The real cost is ~$0.030; a hold from the estimate (~$0.0077) would have let it in.
    _budget(rig, 25_000)
    with pytest.raises(BudgetExceeded):
        await rig.gateway.complete(_request(rig))
    assert rig.openai.count() == 0


async def test_back_to_back_requests_never_take_spending_past_the_limit(rig):
    # Each costs ~$0.030 and is held at ~$0.090 (its UTF-8 bound). Holds from the estimate
    # (~$0.0077) would have admitted a fourth at $0.090 spent, ending at ~$0.120.
    _budget(rig, 100_000)
    served = []
    with pytest.raises(BudgetExceeded):
        for _ in range(5):
            served.append(await rig.gateway.complete(_request(rig)))
            rig.rows()  # settled before the next is admitted
    assert len(served) == 1 and rig.openai.count() == 1
    assert served[0].summary.usage.prompt_tokens >= len(CHINESE)  # what the provider counted
    with rig.sessions() as s:
        [b] = budgets.list_budgets(s)
    assert b.spent_micros == served[0].summary.cost_micros <= b.limit_micros
    assert b.reserved_micros == 0


IMAGE_PROMPT = (
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ],
    },
)


def test_an_image_holds_the_whole_context_window_when_it_is_known():
    # gpt-4o-mini counts one image at up to ~37k tokens: no per-image figure bounds
    # every model, the window does.
    assert pricing.prompt_token_bound(IMAGE_PROMPT, context_window=128_000) == 128_000
    text = ({"role": "user", "content": "Say hello"},)
    assert pricing.prompt_token_bound(text, context_window=128_000) < 100
    assert pricing.prompt_token_bound(text, extra_text="Hello, te") == (
        pricing.prompt_token_bound(text) + len("Hello, te")
    )
    # Unknown window: the most the standard models count per image.
    assert pricing.prompt_token_bound(IMAGE_PROMPT) >= pricing.IMAGE_TOKENS_BOUND


async def test_an_image_request_that_could_overspend_is_refused_before_it_is_sent(rig):
    # Held at 128k tokens x $0.15/M = $0.0192 against $0.015 left. A 1,600-token image
    # hold ($0.00025) would have let in a request gpt-4o-mini may bill at ~$0.006.
    _budget(rig, 15_000)
    with pytest.raises(BudgetExceeded):
        await rig.gateway.complete(
            rig.request(MINI, fallbacks=(), max_tokens=MAX_OUT, messages=IMAGE_PROMPT)
        )
    assert rig.openai.count() == 0
    text = rig.request(
        MINI, fallbacks=(), max_tokens=MAX_OUT, messages=({"role": "user", "content": "Say hello"},)
    )
    assert (await rig.gateway.complete(text)).text  # text alone is held at its own size
