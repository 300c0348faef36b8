"""Fake LLM provider servers for tests: real wire formats, scripted faults, a request log.

Example::

    with FakeOpenAI() as fake:
        fake.script("gpt-4o", Status(429, retry_after=1), Reply(tokens=["Hi ", "there"]))
        ...  # point a client at fake.base_url
        assert [r.outcome for r in fake.requests("gpt-4o")] == ["status:429", "ok"]
"""

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.behaviours import (
    Behaviour,
    ContentFilter,
    ContextLength,
    Garbage,
    Hang,
    Reply,
    Reset,
    Status,
)
from tests.fakes.content import continuation, default_tokens
from tests.fakes.echo import echo
from tests.fakes.log import RequestRecord
from tests.fakes.ollama import FakeOllama
from tests.fakes.openai import FakeOpenAI
from tests.fakes.ports import refused_url, unanswered_url
from tests.fakes.provider import FakeProvider

__all__ = [
    "Behaviour",
    "ContentFilter",
    "ContextLength",
    "FakeAnthropic",
    "FakeOllama",
    "FakeOpenAI",
    "FakeProvider",
    "Garbage",
    "Hang",
    "Reply",
    "RequestRecord",
    "Reset",
    "Status",
    "continuation",
    "default_tokens",
    "echo",
    "refused_url",
    "unanswered_url",
]
