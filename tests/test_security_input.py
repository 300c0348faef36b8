"""Issue 20, finding 3: a caller's bytes give 400 or are stored, never a 500 or a lost row.

Property-based (hypothesis): any text, lone UTF-16 surrogates and NULs included, in any
text field of a chat request. The parser answers with a request or InvalidInput; the
API never answers 5xx; and the ledger stores whatever reaches it.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.api import openai_request
from core.api.app import build_app
from core.api.context import ApiContext
from core.api.surrogates import refuse_lone_surrogates
from core.clock import utc_now
from core.errors import InvalidInput
from core.request import Caller, ChatRequest, Summary
from core.store import ledger
from core.store.ledger import storable
from core.store.tables import RequestRow, User
from tests.conftest import add_user
from tests.test_api import HI, MINI, Api, api, catalog, template_db

__all__ = ["api", "catalog", "template_db"]  # fixtures this module borrows

CALLER = Caller(1, "alice", "member")
# Every code point, the surrogates D800-DFFF included (hypothesis leaves them out by default).
ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=40)
LONE = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"])
TEXT_FIELDS = ("task", "profile", "model", "user", "conversation_id")


@st.composite
def texts_with_a_lone_surrogate(draw: st.DrawFn) -> str:
    before, after = draw(ANY_TEXT), draw(ANY_TEXT)
    return before + draw(LONE) + after


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A chat body whose text fields, message contents and metadata hold any text."""
    body: dict[str, Any] = {
        "model": draw(st.one_of(st.just(MINI), ANY_TEXT)),
        "messages": [
            {"role": draw(st.sampled_from(["user", "system", "assistant"])), "content": text}
            for text in draw(st.lists(ANY_TEXT, min_size=1, max_size=3))
        ],
    }
    for name in draw(st.lists(st.sampled_from(TEXT_FIELDS[1:]), unique=True)):
        body[name] = draw(ANY_TEXT)
    if draw(st.booleans()):
        body["metadata"] = draw(st.dictionaries(ANY_TEXT, ANY_TEXT, max_size=3))
    if draw(st.booleans()):
        body["stop"] = draw(st.lists(ANY_TEXT, max_size=4))
    if draw(st.booleans()):
        _tool_turns(draw, body)
    return body


def _tool_turns(draw: st.DrawFn, body: dict[str, Any]) -> None:
    """Tool definitions (or legacy functions), a choice among them, and an earlier turn's
    call and its result: every name, description, schema key, argument and id any text."""
    name, arguments, call_id = draw(ANY_TEXT), draw(ANY_TEXT), draw(ANY_TEXT)
    function = {
        "name": name,
        "description": draw(ANY_TEXT),
        "parameters": {"type": "object", "properties": {draw(ANY_TEXT): {"type": "string"}}},
    }
    if draw(st.booleans()):
        body["tools"] = [{"type": "function", "function": function}]
        body["tool_choice"] = {"type": "function", "function": {"name": draw(ANY_TEXT)}}
    else:
        body["functions"] = [function]
        body["function_call"] = {"name": draw(ANY_TEXT)}
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    body["messages"] += [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": draw(ANY_TEXT), "content": draw(ANY_TEXT)},
        {"role": "user", "content": draw(ANY_TEXT)},
    ]


# Where a tool's text lives in a body, each a path to put a lone surrogate at.
TOOL_PATHS = (
    "tools[0].function.name",
    "tools[0].function.description",
    "tools[0].function.parameters.properties.city.description",
    "tool_choice.function.name",
    "messages[1].tool_calls[0].id",
    "messages[1].tool_calls[0].function.name",
    "messages[1].tool_calls[0].function.arguments",
    "messages[2].tool_call_id",
    "messages[2].content",
)
LEGACY_PATHS = ("functions[0].name", "functions[0].description", "function_call.name")


def _tool_body(legacy: bool) -> dict[str, Any]:
    """A valid body with tools: a definition, a choice, a call and its result."""
    function = {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "a city"}},
        },
    }
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    body: dict[str, Any] = {
        "model": MINI,
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
    }
    if legacy:
        body |= {"functions": [function], "function_call": {"name": "get_weather"}}
    else:
        body |= {
            "tools": [{"type": "function", "function": function}],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        }
    return body


def _put(body: dict[str, Any], path: str, text: str) -> dict[str, Any]:
    """A copy of body with the string at a dotted path (a[0].b.c) replaced by text."""
    copy: Any = json.loads(json.dumps(body))
    steps = [
        int(step) if step.isdigit() else step for step in re.split(r"\.|\[|\]\.?", path) if step
    ]
    node = copy
    for step in steps[:-1]:
        node = node[step]
    assert isinstance(node[steps[-1]], str), path
    node[steps[-1]] = text
    return copy


def _wire(body: dict[str, Any]) -> bytes:
    # ensure_ascii spells every non-ASCII code point as \u escapes, lone surrogates too:
    # valid UTF-8, valid JSON, as a client library would send them.
    return json.dumps(body, ensure_ascii=True).encode()


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []


@settings(max_examples=300, deadline=None)
@given(bodies())
def test_the_parser_returns_a_request_or_invalid_input_and_never_a_surrogate(
    body: dict[str, Any],
) -> None:
    try:
        call = openai_request.parse_chat(openai_request.parse_json(_wire(body)), CALLER, "r1")
    except InvalidInput as exc:
        assert exc.message
        return
    request = call.request
    fields = [request.task, request.profile, request.model, request.conversation_id]
    carried = [*fields, *_strings(dict(request.metadata)), *_strings(dict(request.params))]
    carried += _strings([dict(m) for m in request.messages])  # tool calls and ids too
    for text in carried:
        if isinstance(text, str):
            text.encode("utf-8")  # strict: a lone surrogate would raise here


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(TEXT_FIELDS), texts_with_a_lone_surrogate())
def test_a_lone_surrogate_in_any_text_field_is_a_400_naming_the_field(
    field: str, text: str
) -> None:
    body: dict[str, Any] = {"model": MINI, "messages": HI, field: text}
    raw = _wire(body)
    try:
        openai_request.parse_chat(openai_request.parse_json(raw), CALLER, "r1")
    except InvalidInput as exc:
        assert f"`{field}`" in exc.message and "surrogate" in exc.message
    else:
        raise AssertionError(f"{field}={text!r} was accepted")


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.tuples(st.just(False), st.sampled_from(TOOL_PATHS)),
        st.tuples(st.just(True), st.sampled_from(LEGACY_PATHS)),
    ),
    texts_with_a_lone_surrogate(),
)
def test_a_lone_surrogate_in_any_tool_field_is_a_400_naming_it(
    where: tuple[bool, str], text: str
) -> None:
    legacy, path = where
    clean = _tool_body(legacy)
    openai_request.parse_chat(openai_request.parse_json(_wire(clean)), CALLER, "r1")  # valid
    try:
        raw = _wire(_put(clean, path, text))
        openai_request.parse_chat(openai_request.parse_json(raw), CALLER, "r1")
    except InvalidInput as exc:
        assert f"`{path}`" in exc.message and "surrogate" in exc.message, exc.message
    else:
        raise AssertionError(f"{path}={text!r} was accepted")


def test_paired_surrogates_are_one_character_and_pass() -> None:
    raw = b'{"model": "m", "messages": [{"role": "user", "content": "\\ud83d\\ude00"}]}'
    body = openai_request.parse_json(raw)
    assert body["messages"][0]["content"] == "\U0001f600"
    refuse_lone_surrogates(raw.decode(), body)


async def test_the_reported_case_is_a_400_and_the_refusal_is_in_the_ledger(api: Api) -> None:
    for field in ("task", "profile"):
        raw = json.dumps({"model": MINI, "messages": HI, field: "a\ud800b"}).encode()
        r = await api.client.post(
            "/v1/chat/completions",
            content=raw,
            headers={**api.auth, "content-type": "application/json"},
        )
        assert r.status_code == 400, r.text
        assert "surrogate" in r.json()["error"]["message"]
    # The writer kept working: a good request after them is recorded.
    assert (await api.chat({"model": MINI, "messages": HI, "task": "after"})).status_code == 200
    assert [row.task for row in api.ledger()] == ["after"]


async def test_a_lone_surrogate_in_a_tool_field_is_a_400_through_the_api(
    api: Api, fake_openai: Any
) -> None:
    for legacy, paths in ((False, TOOL_PATHS), (True, LEGACY_PATHS)):
        for path in paths:
            raw = _wire(_put(_tool_body(legacy), path, "a\ud800b"))
            r = await api.client.post(
                "/v1/chat/completions",
                content=raw,
                headers={**api.auth, "content-type": "application/json"},
            )
            assert r.status_code == 400, (path, r.text)
            assert f"`{path}`" in r.json()["error"]["message"]
    assert fake_openai.count() == 0  # refused before any upstream call
    # A refused body changes nothing: the same bodies without the surrogate are served,
    # and the ledger holds exactly their two rows.
    for legacy in (False, True):
        assert (await api.chat(_tool_body(legacy))).status_code == 200
    assert len(api.ledger()) == 2


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(ANY_TEXT, min_size=4, max_size=4))
def test_the_ledger_stores_any_text_a_caller_could_send(
    sessions: sessionmaker[Session], texts: list[str]
) -> None:
    """Whatever reaches the ledger (a CLI argument can hold surrogates too) is stored."""
    task, profile, conversation, model = texts
    with sessions() as s:
        user = s.scalar(select(User).where(User.username == "alice"))
    user_id = user.id if user else add_user(sessions, "alice").id
    caller = Caller(user_id, "alice", "member")
    request = ChatRequest(
        caller,
        ({"role": "user", "content": "hi"},),
        model=model,
        task=task,
        profile=profile,
        conversation_id=conversation,
        metadata={"note": task},
    )
    request_id = uuid.uuid4().hex
    summary = Summary(request_id, model, (model,), "default", "failed", ())
    with sessions.begin() as s:
        ledger.record_many(s, [(request, summary)], utc_now())
    with sessions() as s:
        row = s.get(RequestRow, request_id)
    assert row is not None
    assert row.task == storable(task) and row.profile == storable(profile)


def test_storable_keeps_valid_text_and_replaces_only_what_no_database_takes() -> None:
    assert storable("plain") == "plain"
    assert storable("héllo 😀") == "héllo 😀"
    assert storable("a\ud800b\x00c") == "a\ufffdb\ufffdc"


# --- finding 4: the remaining client mistakes that came back as 5xx -----------------------


async def test_a_prompt_larger_than_every_window_is_400_with_its_token_count(
    api: Api, fake_openai: Any
) -> None:
    roomy = api.runtime.settings.model_copy(update={"api_max_body_bytes": 8 * 1024 * 1024})
    ctx = ApiContext(roomy, runtime_factory=lambda _: api.runtime)
    transport = httpx.ASGITransport(app=build_app(ctx))
    many = [{"role": "user", "content": "hi there"}] * 100_000
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        for body in (
            {"model": MINI, "messages": many},
            {"model": "auto", "fallbacks": [MINI], "messages": many, "stream": True},
        ):
            r = await client.post("/v1/chat/completions", json=body, headers=api.auth)
            assert r.status_code == 400, r.text[:500]
            error = r.json()["error"]
            assert error["code"] == "context_length_exceeded"
            assert re.search(r"about \d{6,} tokens", error["message"]), error["message"]
    assert fake_openai.count() == 0  # refused before any upstream call


async def test_several_unknown_fallbacks_are_404_like_one(api: Api) -> None:
    for fallbacks in (["nope/one"], ["nope/one", "nope/two"], ["nope/a", "nope/b", "nope/c"]):
        r = await api.chat({"model": "auto", "fallbacks": fallbacks, "messages": HI})
        assert r.status_code == 404, r.text
        assert all(name in r.json()["error"]["message"] for name in fallbacks)
