"""Reasoning through /v1/chat/completions: `reasoning_content` on the message and on
deltas (OpenAI wire as DeepSeek and vLLM send it; Anthropic thinking blocks), and
reasoning tokens recorded and priced on the ledger row."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from tests.fakes import FakeAnthropic, FakeOpenAI, Reply
from tests.fakes.content import ToolCall
from tests.test_api import (
    ANTHROPIC_KEY,
    HAIKU,
    HI,
    MINI,
    Api,
    api,
    catalog,
    sse_events,
    template_db,
)

__all__ = ["api", "catalog", "template_db"]  # fixtures shared with test_api

STREAM = pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
THOUGHTS = ["First, ", "the user ", "greets me."]


def _reasoning_and_text(r: Any, stream: bool) -> tuple[str, str]:
    if not stream:
        message = r.json()["choices"][0]["message"]
        return message.get("reasoning_content") or "", message["content"]
    deltas = [
        e["choices"][0]["delta"]
        for e in sse_events(r.text)
        if isinstance(e, dict) and e.get("choices")
    ]
    reasoning = "".join(d.get("reasoning_content") or "" for d in deltas)
    return reasoning, "".join(d.get("content") or "" for d in deltas)


@STREAM
async def test_reasoning_on_the_openai_wire_is_returned_recorded_and_priced(
    api: Api, fake_openai: FakeOpenAI, stream: bool
) -> None:
    fake_openai.script(
        "gpt-4o-mini", Reply(tokens=["Hello!"], reasoning=THOUGHTS, reasoning_tokens=3)
    )
    r = await api.chat({"model": MINI, "messages": HI, "stream": stream})
    assert r.status_code == 200, r.text
    assert _reasoning_and_text(r, stream) == ("".join(THOUGHTS), "Hello!")
    [row] = api.ledger()
    assert row.reasoning_tokens == 3
    # Billed as the catalog prices it: gpt-4o-mini has no separate reasoning price, so
    # reasoning tokens are output tokens.
    info = api.runtime.catalog.get(MINI)
    assert info is not None and info.input_price is not None and info.output_price is not None
    # Prices per 1M tokens are micro-dollars per token.
    expected = row.prompt_tokens * info.input_price + row.completion_tokens * info.output_price
    assert row.cost_micros == int(expected.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@STREAM
async def test_claude_thinking_comes_back_as_reasoning_content(
    api: Api, fake_anthropic: FakeAnthropic, stream: bool
) -> None:
    api.environ["ANTHROPIC_API_KEY"] = ANTHROPIC_KEY
    fake_anthropic.script(HAIKU, Reply(tokens=["Hi ", "there."], reasoning=THOUGHTS))
    body = {
        "model": f"anthropic/{HAIKU}",
        "messages": HI,
        "stream": stream,
        "reasoning_effort": "low",
        "fallbacks": [],
    }
    r = await api.chat(body)
    assert r.status_code == 200, r.text
    assert _reasoning_and_text(r, stream) == ("".join(THOUGHTS), "Hi there.")
    sent = fake_anthropic.requests(HAIKU)[-1].body
    assert sent["thinking"]["type"] == "enabled"
    assert sent["max_tokens"] > sent["thinking"]["budget_tokens"]


@STREAM
async def test_claude_thinking_blocks_come_back_whole_and_replay_with_the_tool_result(
    api: Api, fake_anthropic: FakeAnthropic, stream: bool
) -> None:
    """Claude requires its signed thinking block back in a tool-calling turn when
    thinking is on: the gateway returns it whole, and a replay of it is accepted."""
    api.environ["ANTHROPIC_API_KEY"] = ANTHROPIC_KEY
    call = ToolCall("get_weather", '{"city": "Paris"}', id="call_paris")
    fake_anthropic.script(HAIKU, Reply(tokens=[], reasoning=THOUGHTS, tool_calls=[call]))
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    model = f"anthropic/{HAIKU}"
    first = {"model": model, "messages": HI, "tools": tools, "reasoning_effort": "low"}
    r = await api.chat({**first, "stream": stream, "fallbacks": []})
    assert r.status_code == 200, r.text
    if stream:
        deltas = [
            e["choices"][0]["delta"]
            for e in sse_events(r.text)
            if isinstance(e, dict) and e.get("choices")
        ]
        blocks = next(d["thinking_blocks"] for d in deltas if d.get("thinking_blocks"))
    else:
        blocks = r.json()["choices"][0]["message"]["thinking_blocks"]
    assert len(blocks) == 1
    assert blocks[0]["thinking"] == "".join(THOUGHTS) and blocks[0]["signature"]
    turn = {
        "role": "assistant",
        "content": None,
        "thinking_blocks": blocks,
        "tool_calls": [
            {"id": "call_paris", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
        ],
    }  # fmt: skip
    history = [*HI, turn, {"role": "tool", "tool_call_id": "call_paris", "content": "sunny"}]
    r = await api.chat({**first, "messages": history, "fallbacks": []})
    assert r.status_code == 200, r.text
    assert fake_anthropic.requests(HAIKU)[-1].outcome == "ok"  # the fake checks the block
