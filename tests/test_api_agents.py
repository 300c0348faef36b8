"""Real agent clients, unchanged, against the /v1 API served over TCP: the `openai` SDK
with tools (whole and streamed, then the tool-result turn), LangChain `bind_tools`, a
pydantic-ai agent with one tool, and instructor in its default TOOLS mode.

The fake OpenAI provider answers with scripted tool calls; each test checks what the
client made of them and what the next turn sent upstream.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
from pydantic import BaseModel

from tests.fakes import FakeOpenAI, Reply
from tests.fakes.content import ToolCall
from tests.test_api import MINI, catalog, template_db
from tests.test_api_openai_sdk import Served, served

__all__ = ["catalog", "served", "template_db"]  # fixtures

WEATHER: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
# The first request of a process imports litellm (seconds, more on a busy machine).
SLOW_START_S = 120
ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Weather in Paris?"}]


def _paris(call_id: str = "call_paris") -> Reply:
    return Reply(tokens=[], tool_calls=[ToolCall("get_weather", '{"city": "Paris"}', call_id)])


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_openai_sdk_tool_call_then_the_tool_result_turn(
    served: Served, fake_openai: FakeOpenAI, stream: bool
) -> None:
    client = served.client().with_options(timeout=SLOW_START_S)
    fake_openai.script("gpt-4o-mini", _paris(), Reply(tokens=["18C ", "and ", "sunny."]))
    if stream:
        chunks = list(
            client.chat.completions.create(model=MINI, messages=ASK, tools=[WEATHER], stream=True)
        )
        [delta] = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or ()]
        assert delta.function is not None
        call_id, name, arguments = delta.id, delta.function.name, delta.function.arguments
        finish = next(c.choices[0].finish_reason for c in chunks if c.choices and
                      c.choices[0].finish_reason)  # fmt: skip
    else:
        completion = client.chat.completions.create(model=MINI, messages=ASK, tools=[WEATHER])
        [call] = completion.choices[0].message.tool_calls or []
        assert call.type == "function"
        call_id, name, arguments = call.id, call.function.name, call.function.arguments
        finish = completion.choices[0].finish_reason
    assert (call_id, name, json.loads(arguments or "")) == (
        "call_paris",
        "get_weather",
        {"city": "Paris"},
    )
    assert finish == "tool_calls"

    history: list[ChatCompletionMessageParam] = [
        *ASK,
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_paris",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": arguments or ""},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_paris", "content": "18C and sunny"},
    ]
    answer = client.chat.completions.create(model=MINI, messages=history, tools=[WEATHER])
    assert answer.choices[0].message.content == "18C and sunny."
    sent = fake_openai.requests("gpt-4o-mini")[-1]
    assert sent.outcome == "ok"  # the fake refuses a tool result that answers no call
    assert [m["role"] for m in sent.messages] == ["user", "assistant", "tool"]


def test_langchain_bind_tools(served: Served, fake_openai: FakeOpenAI) -> None:
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    fake_openai.script("gpt-4o-mini", _paris())
    llm = ChatOpenAI(
        model=MINI,
        base_url=f"{served.url}/v1",
        api_key=served.token,
        max_retries=0,
        timeout=SLOW_START_S,
    )
    message = llm.bind_tools([get_weather]).invoke("Weather in Paris?")
    assert message.tool_calls == [
        {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_paris", "type": "tool_call"}
    ]
    sent = fake_openai.requests("gpt-4o-mini")[-1].body
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]


def test_pydantic_ai_agent_with_one_tool(served: Served, fake_openai: FakeOpenAI) -> None:
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    seen: list[str] = []
    fake_openai.script("gpt-4o-mini", _paris(), Reply(tokens=["Paris ", "is ", "sunny."]))
    model = OpenAIChatModel(
        MINI, provider=OpenAIProvider(base_url=f"{served.url}/v1", api_key=served.token)
    )
    agent = Agent(model)

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The weather in a city."""
        seen.append(city)
        return "sunny"

    result = agent.run_sync("Weather in Paris?")
    assert result.output == "Paris is sunny."
    assert seen == ["Paris"]
    second = fake_openai.requests("gpt-4o-mini")[-1]
    assert second.outcome == "ok"
    tool_turn = [m for m in second.messages if m["role"] == "tool"]
    assert [(m["tool_call_id"], m["content"]) for m in tool_turn] == [("call_paris", "sunny")]


def test_instructor_in_its_default_tools_mode(served: Served, fake_openai: FakeOpenAI) -> None:
    import instructor

    class City(BaseModel):
        name: str
        population: int

    arguments = '{"name": "Paris", "population": 2100000}'
    fake_openai.script("gpt-4o-mini", Reply(tokens=[], tool_calls=[ToolCall("City", arguments)]))
    client = instructor.from_openai(served.client().with_options(timeout=SLOW_START_S))
    assert client.mode == instructor.Mode.TOOLS
    city = client.chat.completions.create(
        model=MINI, response_model=City, messages=[{"role": "user", "content": "Paris"}]
    )
    assert (type(city).__name__, city.name, city.population) == ("City", "Paris", 2_100_000)
    sent: dict[str, Any] = fake_openai.requests("gpt-4o-mini")[-1].body
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "City"}}
