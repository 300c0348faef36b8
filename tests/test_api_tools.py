"""Tool calling through /v1/chat/completions, on the OpenAI and the Anthropic wire.

The fakes stream tool calls as the real APIs do (OpenAI: an opening delta with id and
name, then argument pieces; Anthropic: tool_use blocks and input_json_delta), and
refuse a tool result that answers no call, as the real APIs do. The gateway holds a
turn's calls until the upstream finishes it, so a cut never hands out half a call.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes import FakeAnthropic, FakeOpenAI, Reply, Status
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

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
PARIS = ToolCall("get_weather", '{"city": "Paris"}', id="call_paris", fragments=3)
ROME = ToolCall("get_weather", '{"city": "Rome"}', id="call_rome", fragments=2)
CLAUDE = f"anthropic/{HAIKU}"
STREAM = pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])


def tool_deltas(events: list[Any]) -> list[dict[str, Any]]:
    return [
        call
        for e in events
        if isinstance(e, dict) and e.get("choices")
        for call in e["choices"][0]["delta"].get("tool_calls") or ()
    ]


def finish_of(events: list[Any]) -> str | None:
    finishes = [
        e["choices"][0]["finish_reason"]
        for e in events
        if isinstance(e, dict) and e.get("choices") and e["choices"][0]["finish_reason"]
    ]
    return finishes[-1] if finishes else None


def calls_of(body: dict[str, Any], stream: bool) -> tuple[list[dict[str, Any]], str | None]:
    """(tool calls as {id, name, arguments}, finish reason) of a whole or streamed answer."""
    if not stream:
        choice = body["choices"][0]
        calls = choice["message"].get("tool_calls") or []
        return [
            {"id": c["id"], "name": c["function"]["name"], "arguments": c["function"]["arguments"]}
            for c in calls
        ], choice["finish_reason"]
    events = body["events"]
    merged: dict[int, dict[str, Any]] = {}
    for delta in tool_deltas(events):  # the client's merge, as the OpenAI SDK does it
        entry = merged.setdefault(delta["index"], {"id": None, "name": "", "arguments": ""})
        entry["id"] = delta.get("id") or entry["id"]
        entry["name"] += delta.get("function", {}).get("name") or ""
        entry["arguments"] += delta.get("function", {}).get("arguments") or ""
    return [merged[i] for i in sorted(merged)], finish_of(events)


async def ask(api: Api, body: dict[str, Any], stream: bool) -> tuple[int, dict[str, Any]]:
    r = await api.chat({**body, "stream": stream})
    if stream and r.status_code == 200:
        return 200, {"events": sse_events(r.text), "headers": dict(r.headers)}
    return r.status_code, {**r.json(), "headers": dict(r.headers)}


@STREAM
async def test_parallel_tool_calls_on_the_openai_wire(
    api: Api, fake_openai: FakeOpenAI, stream: bool
) -> None:
    fake_openai.script("gpt-4o-mini", Reply(tokens=[], tool_calls=[PARIS, ROME]))
    status, body = await ask(
        api, {"model": MINI, "messages": HI, "tools": [WEATHER], "tool_choice": "auto"}, stream
    )
    assert status == 200, body
    calls, finish = calls_of(body, stream)
    assert calls == [
        {"id": "call_paris", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"id": "call_rome", "name": "get_weather", "arguments": '{"city": "Rome"}'},
    ]
    assert finish == "tool_calls"
    sent = fake_openai.requests("gpt-4o-mini")[-1].body
    assert sent["tools"] == [WEATHER] and sent["tool_choice"] == "auto"
    if stream:  # each call arrives whole, in one delta: never a piece of its arguments
        assert [d["function"]["arguments"] for d in tool_deltas(body["events"])] == [
            '{"city": "Paris"}',
            '{"city": "Rome"}',
        ]
    else:
        assert body["choices"][0]["message"]["content"] is None


@STREAM
async def test_tool_calls_on_the_anthropic_wire_after_text(
    api: Api, fake_anthropic: FakeAnthropic, stream: bool
) -> None:
    api.environ["ANTHROPIC_API_KEY"] = ANTHROPIC_KEY
    fake_anthropic.script(HAIKU, Reply(tokens=["Let ", "me ", "look."], tool_calls=[PARIS, ROME]))
    status, body = await ask(
        api, {"model": CLAUDE, "messages": HI, "tools": [WEATHER], "fallbacks": []}, stream
    )
    assert status == 200, body
    calls, finish = calls_of(body, stream)
    # Anthropic numbers calls by content block (the text is block 0): renumbered from 0.
    assert [(c["id"], json.loads(c["arguments"])) for c in calls] == [
        ("call_paris", {"city": "Paris"}),
        ("call_rome", {"city": "Rome"}),
    ]
    assert finish == "tool_calls"
    if stream:
        assert [d["index"] for d in tool_deltas(body["events"])] == [0, 1]
        text = "".join(
            e["choices"][0]["delta"].get("content") or ""
            for e in body["events"]
            if isinstance(e, dict) and e.get("choices")
        )
    else:
        text = body["choices"][0]["message"]["content"]
    assert text == "Let me look."
    sent = fake_anthropic.requests(HAIKU)[-1].body
    assert sent["tools"][0]["name"] == "get_weather"  # translated to Anthropic's shape
    assert "input_schema" in sent["tools"][0]


def tool_history() -> list[dict[str, Any]]:
    """A finished tool turn as an agent replays it: the call, then its result."""
    return [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_paris",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_paris", "content": "18C and sunny"},
    ]


@STREAM
async def test_the_tool_result_turn_reaches_both_wires(
    api: Api, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic, stream: bool
) -> None:
    api.environ["ANTHROPIC_API_KEY"] = ANTHROPIC_KEY
    for model, fake in ((MINI, fake_openai), (CLAUDE, fake_anthropic)):
        body = {"model": model, "messages": tool_history(), "tools": [WEATHER], "fallbacks": []}
        status, answer = await ask(api, body, stream)
        assert status == 200, answer
        sent = fake.requests()[-1].body
        assert "18C and sunny" in json.dumps(sent["messages"])
    anthropic_turns = fake_anthropic.requests(HAIKU)[-1].body["messages"]
    assert [b["type"] for b in anthropic_turns[1]["content"]] == ["tool_use"]
    assert anthropic_turns[2]["content"][0]["tool_use_id"] == "call_paris"


async def test_a_fallback_gets_the_whole_tool_history(
    api: Api, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    api.environ["ANTHROPIC_API_KEY"] = ANTHROPIC_KEY
    fake_openai.configure("gpt-4o-mini", default=Status(503))
    fake_anthropic.script(HAIKU, Reply(tokens=["It ", "is ", "sunny."]))
    r = await api.chat(
        {"model": MINI, "messages": tool_history(), "tools": [WEATHER], "fallbacks": [CLAUDE]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "It is sunny."
    assert r.headers["x-switchboard-model"] == CLAUDE
    [sent] = fake_anthropic.requests(HAIKU)
    # The fake refuses a tool_result whose tool_use is not in the turn before it.
    assert sent.outcome == "ok"
    use = sent.body["messages"][1]["content"][0]
    assert (use["type"], use["id"], use["input"]) == ("tool_use", "call_paris", {"city": "Paris"})


@STREAM
async def test_primary_failing_before_output_switches_invisibly(
    api: Api, fake_openai: FakeOpenAI, stream: bool
) -> None:
    fake_openai.configure("gpt-4o", default=Status(503))
    fake_openai.script("gpt-4o-mini", Reply(tokens=[], tool_calls=[PARIS]))
    body = {"model": "openai/gpt-4o", "messages": HI, "tools": [WEATHER], "fallbacks": [MINI]}
    status, answer = await ask(api, body, stream)
    assert status == 200, answer
    calls, finish = calls_of(answer, stream)
    assert [c["id"] for c in calls] == ["call_paris"] and finish == "tool_calls"
    assert answer["headers"]["x-switchboard-model"] == MINI
    assert answer["headers"]["x-switchboard-fallback"] == "true"


async def test_a_stream_cut_mid_arguments_fails_over_invisibly(
    api: Api, fake_openai: FakeOpenAI
) -> None:
    # Cut after the first of Paris's three argument pieces: held, so nothing went out.
    fake_openai.script("gpt-4o", Reply(tokens=[], tool_calls=[PARIS], cut_after=1))
    fake_openai.script("gpt-4o-mini", Reply(tokens=[], tool_calls=[ROME]))
    body = {"model": "openai/gpt-4o", "messages": HI, "tools": [WEATHER], "fallbacks": [MINI]}
    status, answer = await ask(api, body, True)
    assert status == 200, answer
    calls, finish = calls_of(answer, True)
    assert calls == [{"id": "call_rome", "name": "get_weather", "arguments": '{"city": "Rome"}'}]
    assert finish == "tool_calls"
    assert answer["headers"]["x-switchboard-model"] == MINI
    info = answer["events"][-2]["x_switchboard"]
    assert [a["outcome"] for a in info["attempts"]] == ["cut", "ok"]


async def test_a_cut_call_with_no_fallback_never_reaches_the_caller(
    api: Api, fake_openai: FakeOpenAI
) -> None:
    # Text first, then a call cut mid-arguments: the text is out, the call is not.
    fake_openai.script(
        "gpt-4o-mini", Reply(tokens=["Checking."], tool_calls=[PARIS], cut_after=2, rst=True)
    )
    r = await api.chat(
        {"model": MINI, "messages": HI, "tools": [WEATHER], "stream": True, "fallbacks": []}
    )
    assert r.status_code == 200  # the text went out before the cut
    events = sse_events(r.text)
    assert tool_deltas(events) == []
    assert finish_of(events) is None
    assert "[DONE]" not in events
    assert "error" in events[-1]
    [row] = api.ledger()
    assert row.status == "partial"


async def test_text_cut_before_a_tool_call_is_continued_then_the_call_arrives(
    api: Api, fake_openai: FakeOpenAI
) -> None:
    words = ["Let ", "me ", "check ", "that."]
    fake_openai.script("gpt-4o", Reply(tokens=words, cut_after=2, token_delay=0.01))
    fake_openai.script("gpt-4o-mini", Reply(tokens=words, tool_calls=[PARIS]))
    body = {"model": "openai/gpt-4o", "messages": HI, "tools": [WEATHER], "fallbacks": [MINI]}
    status, answer = await ask(api, body, True)
    assert status == 200, answer
    events = answer["events"]
    text = "".join(
        e["choices"][0]["delta"].get("content") or ""
        for e in events
        if isinstance(e, dict) and e.get("choices")
    )
    assert text == "".join(words)  # the continuation passes on only what follows
    calls, finish = calls_of(answer, True)
    assert [c["id"] for c in calls] == ["call_paris"] and finish == "tool_calls"


async def test_legacy_functions_become_tools_and_answer_as_function_call(
    api: Api, fake_anthropic: FakeAnthropic
) -> None:
    api.environ["ANTHROPIC_API_KEY"] = ANTHROPIC_KEY
    fake_anthropic.script(HAIKU, Reply(tokens=[], tool_calls=[PARIS]))
    history = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "function_call": {"name": "get_weather",
                                                                  "arguments": "{}"}},
        {"role": "function", "name": "get_weather", "content": "which city?"},
    ]  # fmt: skip
    r = await api.chat(
        {
            "model": CLAUDE,
            "messages": history,
            "functions": [WEATHER["function"]],
            "function_call": {"name": "get_weather"},
            "fallbacks": [],
        }
    )
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "function_call"
    assert choice["message"]["function_call"] == {
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
    }
    sent = fake_anthropic.requests(HAIKU)[-1].body
    assert sent["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert sent["messages"][2]["content"][0]["type"] == "tool_result"


async def test_tool_definitions_count_in_the_budget_hold(api: Api) -> None:
    from core.gateway.admission import definitions_text
    from core.money.pricing import prompt_token_bound
    from core.request import Caller, ChatRequest

    caller = Caller(1, "alice", "member")
    plain = ChatRequest(caller, tuple(HI), MINI)
    tooled = ChatRequest(caller, tuple(HI), MINI, params={"tools": [WEATHER]})
    base = prompt_token_bound(plain.messages, extra_text=definitions_text(plain))
    held = prompt_token_bound(tooled.messages, extra_text=definitions_text(tooled))
    assert held - base == len(json.dumps({"tools": [WEATHER]}, separators=(",", ":")))


async def test_tool_call_pieces_count_as_the_first_token(api: Api, fake_openai: FakeOpenAI) -> None:
    """A turn that is only a tool call is not a hung provider: its argument pieces stop
    the first-token timer, as text would."""
    from core.clock import utc_now
    from core.settings import routes
    from core.settings.routes import RouteOptions

    with api.runtime.sessions.begin() as s:
        routes.set_route(
            s,
            scope="user",
            scope_id=api.user_id,
            models=[MINI],
            known_model=lambda m: True,
            actor="test",
            now=utc_now(),
            options=RouteOptions(first_token_timeout_s=1.0, max_retries=0),
        )
    slow = ToolCall("get_weather", '{"city": "Paris"}', id="call_slow", fragments=3)
    # Three pieces 0.6 s apart: the last arrives after 1.2 s, past the first-token timeout.
    fake_openai.script("gpt-4o-mini", Reply(tokens=[], tool_calls=[slow], token_delay=0.6))
    status, answer = await ask(api, {"messages": HI, "tools": [WEATHER]}, True)
    assert status == 200, answer
    calls, finish = calls_of(answer, True)
    assert [c["id"] for c in calls] == ["call_slow"] and finish == "tool_calls"
    assert fake_openai.count() == 1
