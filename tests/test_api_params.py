"""Every request field handled on purpose: forwarded, refused with a 400, or dropped on
request, field by field, against the fakes on loopback (what reached the provider is
read from the fake's request log)."""

from __future__ import annotations

from typing import Any

import pytest

from core.clock import utc_now
from core.settings import endpoints, routes
from core.settings.routes import RouteOptions
from tests.fakes import FakeAnthropic, FakeOpenAI
from tests.test_api import (
    ANTHROPIC_KEY,
    HAIKU,
    HI,
    MINI,
    Api,
    api,
    catalog,
    template_db,
)

__all__ = ["api", "catalog", "template_db"]  # fixtures shared with test_api

CLAUDE = f"anthropic/{HAIKU}"
GPT5 = "openai/gpt-5"
ENDPOINT = "corp-vllm/qwen3"
TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]

# (model, fields sent, what the upstream body must hold: None when the field is refused)
FORWARDED: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (MINI, {"tools": TOOLS, "tool_choice": "required"}, {"tool_choice": "required"}),
    (MINI, {"tools": TOOLS, "parallel_tool_calls": False}, {"parallel_tool_calls": False}),
    (MINI, {"service_tier": "flex"}, {"service_tier": "flex"}),
    (MINI, {"prediction": {"type": "content", "content": "x"}},
     {"prediction": {"type": "content", "content": "x"}}),
    (MINI, {"web_search_options": {}}, {"web_search_options": {}}),
    (MINI, {"prompt_cache_key": "k1"}, {"prompt_cache_key": "k1"}),
    (MINI, {"safety_identifier": "s1"}, {"safety_identifier": "s1"}),
    (MINI, {"store": True}, {"store": True}),
    (MINI, {"seed": 7, "top_p": 0.5}, {"seed": 7, "top_p": 0.5}),
    (GPT5, {"verbosity": "low"}, {"verbosity": "low"}),
    (GPT5, {"reasoning_effort": "minimal"}, {"reasoning_effort": "minimal"}),
    # Provider extras (the OpenAI SDK's extra_body arrives as top-level fields).
    (MINI, {"top_k": 5}, {"top_k": 5}),
    (ENDPOINT, {"chat_template_kwargs": {"enable_thinking": False}},
     {"chat_template_kwargs": {"enable_thinking": False}}),
    (ENDPOINT, {"extra_body": {"top_k": 3}}, {"top_k": 3}),
    (ENDPOINT, {"reasoning_effort": "low"}, {"reasoning_effort": "low"}),
    (CLAUDE, {"top_k": 5}, {"top_k": 5}),
    (CLAUDE, {"tools": TOOLS, "tool_choice": "required"}, {"tool_choice": {"type": "any"}}),
    # reasoning_effort becomes Claude's extended thinking.
    (CLAUDE, {"reasoning_effort": "low"}, {"thinking": {"type": "enabled", "budget_tokens": 1024}}),
]  # fmt: skip

# (model, fields, words the 400 must contain): the model does not take the field.
REFUSED: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    (MINI, {"reasoning_effort": "low"}, ("`reasoning_effort`", MINI, "drop_params")),
    (MINI, {"verbosity": "low"}, ("`verbosity`", MINI, "drop_params")),
    (CLAUDE, {"seed": 1}, ("`seed`", CLAUDE, "drop_params")),
    (CLAUDE, {"presence_penalty": 0.5}, ("`presence_penalty`", CLAUDE)),
    (GPT5, {"top_p": 0.5}, ("`top_p`", GPT5)),
    # A value the model does not take, which litellm finds while building the request.
    (GPT5, {"temperature": 0.2}, ("temperature", GPT5)),
    ("openai/o3-mini", {"reasoning_effort": "extreme"}, ("reasoning_effort",)),
    # What the gateway could take but never hand back: refused for every model.
    (MINI, {"logprobs": True}, ("`logprobs`", "Remove it")),
    (MINI, {"top_logprobs": 3}, ("`top_logprobs`",)),
    (MINI, {"modalities": ["text", "audio"]}, ("`modalities`",)),
    (MINI, {"audio": {"voice": "alloy", "format": "wav"}}, ("`audio`",)),
    (MINI, {"n": 3}, ("`n` must be 1",)),
    # Client settings are never a caller's to set.
    (MINI, {"api_base": "http://evil.example"}, ("`api_base`",)),
    (MINI, {"extra_body": {"api_key": "x"}}, ("`api_key`",)),
    (MINI, {"mock_response": "hi"}, ("`mock_response`",)),
    # A content part without its own object.
    (MINI, {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
     ("image_url", "https://")),
]  # fmt: skip


@pytest.fixture
def wired(api: Api, fake_openai: FakeOpenAI) -> Api:
    api.environ["ANTHROPIC_API_KEY"] = ANTHROPIC_KEY
    with api.runtime.sessions.begin() as s:
        endpoints.add_endpoint(
            s,
            name="corp-vllm",
            kind="openai-compatible",
            api_base=fake_openai.base_url,
            models=("qwen3",),
            actor="test",
            now=utc_now(),
            builtin_providers=api.runtime.catalog.providers(),
        )
    api.runtime.gateway.refresh()
    return api


def _upstream_body(model: str, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> Any:
    fake = fake_anthropic if model.startswith("anthropic/") else fake_openai
    return fake.requests()[-1].body


@pytest.mark.parametrize(
    ("model", "fields", "expected"), FORWARDED, ids=[f"{m}-{','.join(f)}" for m, f, _ in FORWARDED]
)
async def test_a_field_the_model_takes_reaches_it(
    wired: Api,
    fake_openai: FakeOpenAI,
    fake_anthropic: FakeAnthropic,
    model: str,
    fields: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    r = await wired.chat({"model": model, "messages": HI, "fallbacks": [], **fields})
    assert r.status_code == 200, r.text
    body = _upstream_body(model, fake_openai, fake_anthropic)
    assert {k: body.get(k) for k in expected} == expected
    assert "x-switchboard-dropped-params" not in r.headers


@pytest.mark.parametrize(
    ("model", "fields", "words"), REFUSED, ids=[f"{m}-{','.join(f)}" for m, f, _ in REFUSED]
)
async def test_a_field_the_model_does_not_take_is_a_400_naming_it(
    wired: Api,
    fake_openai: FakeOpenAI,
    fake_anthropic: FakeAnthropic,
    model: str,
    fields: dict[str, Any],
    words: tuple[str, ...],
) -> None:
    body = {"model": model, "messages": HI, "fallbacks": [], **fields}
    r = await wired.chat(body)
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert all(w in message for w in words), message
    assert fake_openai.count() == fake_anthropic.count() == 0  # nothing was sent
    # A caller's mistake never counts against a provider.
    assert all(b.state == "closed" for b in wired.runtime.gateway.breaker_states())


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_drop_params_leaves_the_field_out_and_says_so(
    wired: Api, fake_openai: FakeOpenAI, stream: bool
) -> None:
    body = {
        "model": MINI,
        "messages": HI,
        "reasoning_effort": "low",
        "verbosity": "low",
        "seed": 3,
        "drop_params": True,
        "stream": stream,
    }
    r = await wired.chat(body)
    assert r.status_code == 200, r.text
    assert r.headers["x-switchboard-dropped-params"] == "reasoning_effort,verbosity"
    sent = fake_openai.requests("gpt-4o-mini")[-1].body
    assert "reasoning_effort" not in sent and "verbosity" not in sent and "drop_params" not in sent
    assert sent["seed"] == 3  # a field the model takes still goes
    [row] = wired.ledger()
    assert row.dropped_params == ["reasoning_effort", "verbosity"]


async def test_a_route_can_ask_to_drop_and_a_fallback_that_cannot_take_a_field_is_skipped(
    wired: Api, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    # Without drop_params the fallback that does not take `seed` is skipped, not degraded.
    fake_openai.configure("gpt-4o-mini", default=_status_503())
    r = await wired.chat({"model": MINI, "messages": HI, "seed": 1, "fallbacks": [CLAUDE]})
    assert r.status_code == 502, r.text
    assert f"{CLAUDE}:skipped-params:" in r.headers["x-switchboard-attempts"]
    assert fake_anthropic.count() == 0
    # A route that asks to drop: the fallback answers without it, and says so.
    with wired.runtime.sessions.begin() as s:
        routes.set_route(
            s,
            scope="user",
            scope_id=wired.user_id,
            models=[MINI, CLAUDE],
            known_model=lambda m: True,
            actor="test",
            now=utc_now(),
            options=RouteOptions(drop_params=True),
        )
    wired.runtime.gateway.refresh()
    r = await wired.chat({"messages": HI, "seed": 1})
    assert r.status_code == 200, r.text
    assert r.headers["x-switchboard-model"] == CLAUDE
    assert r.headers["x-switchboard-dropped-params"] == "seed"
    assert "seed" not in fake_anthropic.requests(HAIKU)[-1].body


def _status_503() -> Any:
    from tests.fakes import Status

    return Status(503)
