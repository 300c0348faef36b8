"""The fakes speak the real wire formats (checked with the official clients) and misbehave
exactly as scripted (checked with raw httpx and sockets).

Run from the repo root with ``python -m pytest tests/test_fakes.py`` so ``tests`` imports.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.fakes import (
    Behaviour,
    ContentFilter,
    ContextLength,
    FakeAnthropic,
    FakeOllama,
    FakeOpenAI,
    FakeProvider,
    Garbage,
    Hang,
    Reply,
    Reset,
    Status,
    continuation,
    echo,
    refused_url,
)
from tests.fakes.content import ToolCall

# Registers the fake_openai / fake_anthropic / fake_ollama fixtures.
pytest_plugins = ["tests.fakes.fixtures"]
pytestmark = pytest.mark.timeout(20)

KEY = "sk-test-secret-1234"
ANT_KEY = "sk-ant-secret-5678"
OPENAI_HEADERS = {"Authorization": f"Bearer {KEY}"}
ANT_HEADERS = {"x-api-key": ANT_KEY, "anthropic-version": "2023-06-01"}
HAIKU = "claude-3-5-haiku-20241022"
TIMEOUT = httpx.Timeout(5.0, read=2.0)
# Building an SSL context per httpx client costs ~80 ms; the fakes are plain HTTP anyway.
_TLS = ssl.create_default_context()


def client(timeout: httpx.Timeout = TIMEOUT, **kw: Any) -> httpx.Client:
    """A fresh client (so no pooled connection leaks between checks), ignoring proxy env."""
    return httpx.Client(timeout=timeout, verify=_TLS, trust_env=False, **kw)


def request(method: str, url: str, **kw: Any) -> httpx.Response:
    timeout = kw.pop("timeout", TIMEOUT)
    with client(timeout) as http:
        return http.request(method, url, **kw)


def oa_body(model: str = "gpt-4o", stream: bool = False, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "say hello to me"}],
        **extra,
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def ant_body(model: str = HAIKU, stream: bool = False, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "say hello to me"}],
        **extra,
    }
    if stream:
        body["stream"] = True
    return body


def oa_post(fake: FakeProvider, body: dict[str, Any], **kw: Any) -> httpx.Response:
    url = f"{fake.base_url}/chat/completions"
    return request("POST", url, json=body, headers=OPENAI_HEADERS, **kw)


def ant_post(fake: FakeAnthropic, body: dict[str, Any]) -> httpx.Response:
    url = f"{fake.base_url}/v1/messages"
    return request("POST", url, json=body, headers=ANT_HEADERS)


def read_stream(
    url: str, body: dict[str, Any], headers: dict[str, str], timeout: httpx.Timeout = TIMEOUT
) -> tuple[httpx.Response, list[str], Exception | None]:
    """Non-empty SSE lines received before the stream ended, and the error that ended it."""
    lines: list[str] = []
    with (
        client(timeout) as http,
        http.stream("POST", url, json=body, headers=headers) as resp,
    ):
        try:
            for line in resp.iter_lines():
                if line:
                    lines.append(line)
        except httpx.HTTPError as exc:
            return resp, lines, exc
    return resp, lines, None


def oa_stream(
    fake: FakeProvider, body: dict[str, Any], timeout: httpx.Timeout = TIMEOUT
) -> tuple[httpx.Response, list[str], Exception | None]:
    return read_stream(f"{fake.base_url}/chat/completions", body, OPENAI_HEADERS, timeout)


def contents(lines: list[str]) -> list[str]:
    """Content deltas of an OpenAI SSE stream, skipping what isn't JSON."""
    out: list[str] = []
    for line in lines:
        try:
            chunk = json.loads(line.removeprefix("data: "))
        except json.JSONDecodeError:
            continue
        for choice in chunk.get("choices") or []:
            if choice["delta"].get("content"):
                out.append(choice["delta"]["content"])
    return out


def finish_reasons(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        try:
            chunk = json.loads(line.removeprefix("data: "))
        except json.JSONDecodeError:
            continue
        out += [c["finish_reason"] for c in chunk.get("choices") or [] if c["finish_reason"]]
    return out


def send_raw(port: int, body: dict[str, Any]) -> socket.socket:
    """Send one request over a plain socket and leave it open."""
    data = json.dumps(body).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    sock = socket.create_connection(("127.0.0.1", port), timeout=2)
    sock.sendall(head.encode() + data)
    return sock


@pytest.fixture
def litellm_module() -> Iterator[Any]:
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    import litellm  # slow import: only the tests that need it pay

    litellm.suppress_debug_info = True
    yield litellm


# --- official clients ----------------------------------------------------------------


def test_openai_sdk_sync(fake_openai: FakeOpenAI) -> None:
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key=KEY, max_retries=0)
    resp = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "say hello to me"}]
    )
    assert resp.object == "chat.completion"
    assert resp.id.startswith("chatcmpl-")
    assert resp.choices[0].message.content == fake_openai.reply_text("gpt-4o")
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (4, 8)
    assert resp.usage.total_tokens == 12

    fake_openai.configure("gpt-4o", tokens=["Hello ", "world"])
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello world"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 2

    (first, second) = fake_openai.requests("gpt-4o")
    assert (first.outcome, first.stream, second.stream) == ("ok", False, True)
    assert first.key_last4 == "1234" and first.completed


async def test_openai_sdk_async_streaming_and_models(fake_openai: FakeOpenAI) -> None:
    client = openai.AsyncOpenAI(base_url=fake_openai.base_url, api_key=KEY, max_retries=0)
    models = [m.id async for m in client.models.list()]
    assert "gpt-4o" in models
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == fake_openai.reply_text("gpt-4o-mini")
    resp = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=3
    )
    assert resp.choices[0].finish_reason == "length"
    assert resp.choices[0].message.content == "".join(fake_openai.tokens_for("gpt-4o-mini")[:3])
    await client.close()


def test_openai_sdk_retries_429_honouring_retry_after(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("gpt-4o", Status(429, retry_after=0.3))
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key=KEY, max_retries=1)
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    first, second = fake_openai.requests("gpt-4o")
    assert (first.outcome, second.outcome) == ("status:429", "ok")
    assert second.received_at - first.received_at >= 0.25
    assert second.headers["x-stainless-retry-count"] == "1"


async def test_ollama_with_openai_sdk(fake_ollama: FakeOllama) -> None:
    client = openai.AsyncOpenAI(base_url=fake_ollama.base_url, api_key="ollama", max_retries=0)
    model = "llama3.2:latest"
    resp = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}]
    )
    assert resp.system_fingerprint == "fp_ollama"
    assert resp.choices[0].message.content == fake_ollama.reply_text(model)
    stream = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert [m.id async for m in client.models.list()] == [model]
    await client.close()

    async with httpx.AsyncClient(
        base_url=fake_ollama.root_url, timeout=TIMEOUT, verify=_TLS, trust_env=False
    ) as http:
        tags = (await http.get("/api/tags")).json()
        assert tags["models"][0]["name"] == model
        assert (await http.get("/")).text == "Ollama is running"
        keyless = await http.post("/v1/chat/completions", json=oa_body(model))
        assert keyless.status_code == 200  # Ollama needs no key
        fake_ollama.script(model, Status(404))
        missing = await http.post("/v1/chat/completions", json=oa_body(model))
        assert missing.status_code == 404
        assert "try pulling it first" in missing.json()["error"]["message"]


async def test_litellm_openai(fake_openai: FakeOpenAI, litellm_module: Any) -> None:
    litellm = litellm_module
    args: dict[str, Any] = {
        "model": "openai/gpt-4o",
        "api_base": fake_openai.base_url,
        "api_key": "sk-test-1234",
        "messages": [{"role": "user", "content": "hello world"}],
        "max_retries": 0,
    }
    resp = await litellm.acompletion(**args)
    assert resp.choices[0].message.content == fake_openai.reply_text("gpt-4o")
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (2, 8)

    stream = await litellm.acompletion(**args, stream=True, stream_options={"include_usage": True})
    pieces = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in pieces if c.choices)
    assert text == fake_openai.reply_text("gpt-4o")
    assert any(getattr(c, "usage", None) for c in pieces)

    plain, streamed = fake_openai.requests("gpt-4o")
    assert plain.path == "/v1/chat/completions"
    assert plain.key_last4 == "1234"
    assert streamed.body["stream_options"] == {"include_usage": True}

    fake_openai.script("gpt-4o", ContextLength())
    with pytest.raises(litellm.ContextWindowExceededError):
        await litellm.acompletion(**args)
    fake_openai.script("gpt-4o", ContentFilter(error_code="content_policy_violation"))
    with pytest.raises(litellm.ContentPolicyViolationError):
        await litellm.acompletion(**args)
    fake_openai.script("gpt-4o", Status(429, retry_after=1))
    with pytest.raises(litellm.RateLimitError):
        await litellm.acompletion(**args)
    # max_retries=0 matters: without it the OpenAI SDK under litellm retries on its own.
    outcomes = [r.outcome for r in fake_openai.requests("gpt-4o")]
    assert outcomes[-2:] == ["content_filter", "status:429"]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_litellm_hides_a_cut_stream(
    provider: str, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic, litellm_module: Any
) -> None:
    """Characterises litellm 1.90.7, so gateway code knows it must detect cuts itself."""
    fake: FakeProvider = fake_openai if provider == "openai" else fake_anthropic
    model = "gpt-4o" if provider == "openai" else HAIKU
    fake.script(model, Reply(cut_after=2))
    stream = await litellm_module.acompletion(
        model=f"{provider}/{model}",
        api_base=fake.base_url,
        api_key=KEY,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        max_retries=0,
    )
    pieces = [c async for c in stream if c.choices]
    assert "".join(c.choices[0].delta.content or "" for c in pieces) == "".join(
        fake.tokens_for(model)[:2]
    )
    # No exception, and litellm invents a finish_reason the upstream never sent.
    assert [c.choices[0].finish_reason for c in pieces if c.choices[0].finish_reason] == ["stop"]
    assert fake.requests(model)[0].outcome == "cut:2"


async def test_litellm_anthropic(fake_anthropic: FakeAnthropic, litellm_module: Any) -> None:
    litellm = litellm_module
    args: dict[str, Any] = {
        "model": f"anthropic/{HAIKU}",
        "api_base": fake_anthropic.base_url,
        "api_key": ANT_KEY,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello world"},
        ],
    }
    resp = await litellm.acompletion(**args)
    assert resp.choices[0].message.content == fake_anthropic.reply_text(HAIKU)
    assert resp.choices[0].finish_reason == "stop"  # mapped from end_turn
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (4, 8)

    stream = await litellm.acompletion(**args, stream=True)
    pieces = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in pieces if c.choices)
    assert text == fake_anthropic.reply_text(HAIKU)
    assert [c.choices[0].finish_reason for c in pieces if c.choices][-1] == "stop"

    rec = fake_anthropic.requests(HAIKU)[0]
    assert rec.path == "/v1/messages"
    assert rec.headers["x-api-key"] == "…5678" and rec.key_last4 == "5678"
    assert rec.headers["anthropic-version"] == "2023-06-01"
    assert rec.body["system"] == [{"type": "text", "text": "be brief"}]
    assert isinstance(rec.body["max_tokens"], int)

    # Continuation: litellm strips the prefill's trailing space; the fake carries on.
    done = fake_anthropic.tokens_for(HAIKU)[:2]
    prefill = [{"role": "assistant", "content": "".join(done)}]
    resp = await litellm.acompletion(**{**args, "messages": args["messages"] + prefill})
    rest = resp.choices[0].message.content
    assert "".join(done).rstrip() + rest == fake_anthropic.reply_text(HAIKU)
    assert fake_anthropic.requests(HAIKU)[-1].prefill == "".join(done).rstrip()

    fake_anthropic.script(HAIKU, ContextLength())
    with pytest.raises(litellm.ContextWindowExceededError):
        await litellm.acompletion(**args)
    fake_anthropic.script(HAIKU, Status(529))
    with pytest.raises(litellm.InternalServerError):
        await litellm.acompletion(**args)


# --- faults, seen through raw httpx ---------------------------------------------------


@pytest.mark.parametrize(
    ("code", "err_type"),
    [(429, "rate_limit_error"), (529, "overloaded_error"), (503, "api_error")],
)
def test_anthropic_status(fake_anthropic: FakeAnthropic, code: int, err_type: str) -> None:
    fake_anthropic.script(HAIKU, Status(code, retry_after=2))
    resp = ant_post(fake_anthropic, ant_body())
    assert resp.status_code == code
    assert resp.headers["retry-after"] == "2"
    assert resp.json()["type"] == "error"
    assert resp.json()["error"]["type"] == err_type
    assert fake_anthropic.requests()[0].outcome == f"status:{code}"


@pytest.mark.parametrize("code", [408, 429, 500, 502, 503, 504, 400, 401, 403, 404, 529])
def test_openai_status(fake_openai: FakeOpenAI, code: int) -> None:
    fake_openai.script("gpt-4o", Status(code, retry_after=0.5))
    resp = oa_post(fake_openai, oa_body())
    assert resp.status_code == code
    assert resp.headers["retry-after"] == "0.5"
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    assert oa_post(fake_openai, oa_body()).status_code == 200  # queue consumed


def test_echo_mode_repeats_the_key_that_arrived_on_the_wire(
    fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    call = ToolCall("get_" + echo("key", 0, 3), '{"k": "' + echo() + '"}', fragments=4)
    fake_openai.script(
        "gpt-4o",
        Reply(tokens=["key=", echo("key", 0, 5), echo("key", 5)], reasoning=[echo()],
              tool_calls=[call]),
        Status(502, message="got " + echo("authorization"), headers={"x-echo": echo()}),
    )  # fmt: skip
    _, lines, exc = oa_stream(fake_openai, oa_body(stream=True))
    assert exc is None
    deltas = [json.loads(x[6:])["choices"][0]["delta"] for x in lines if x.startswith("data: {")
              and json.loads(x[6:])["choices"]]  # fmt: skip
    assert [d["content"] for d in deltas if d.get("content")] == ["key=", KEY[:5], KEY[5:]]
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == KEY
    fn = [c["function"] for d in deltas for c in d.get("tool_calls") or ()]
    assert fn[0]["name"] == "get_" + KEY[:3]
    assert json.loads("".join(f.get("arguments") or "" for f in fn)) == {"k": KEY}
    failed = oa_post(fake_openai, oa_body())
    assert failed.json()["error"]["message"] == f"got Bearer {KEY}"
    assert failed.headers["x-echo"] == KEY
    # Anthropic's key arrives as x-api-key: the same placeholder repeats that.
    fake_anthropic.script(HAIKU, Reply(tokens=[echo("key", 0, 7), echo("key", 7)]))
    answer = ant_post(fake_anthropic, ant_body()).json()
    assert answer["content"][0]["text"] == ANT_KEY


def test_reset_is_a_transport_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("gpt-4o", Reset())
    with pytest.raises(httpx.TransportError):
        oa_post(fake_openai, oa_body())
    assert [r.outcome for r in fake_openai.requests()] == ["reset"]


def test_refused_and_down_up(fake_openai: FakeOpenAI) -> None:
    with refused_url() as url, pytest.raises(httpx.ConnectError):
        request("POST", f"{url}/chat/completions", json=oa_body())
    fake_openai.down()
    with pytest.raises(httpx.ConnectError):
        oa_post(fake_openai, oa_body())
    fake_openai.up()
    assert oa_post(fake_openai, oa_body()).status_code == 200


def test_garbage_is_a_protocol_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("gpt-4o", Garbage())
    with pytest.raises(httpx.RemoteProtocolError):
        oa_post(fake_openai, oa_body())


def test_hang_times_out_and_stop_is_prompt() -> None:
    fake = FakeOpenAI().start()
    fake.script(None, Hang(), Hang(), Reply(stall_after=1))
    with pytest.raises(httpx.ReadTimeout):
        oa_post(fake, oa_body(), timeout=httpx.Timeout(5.0, read=0.3))
    held = [send_raw(fake.port, oa_body()), send_raw(fake.port, oa_body(stream=True))]
    deadline = time.monotonic() + 2
    while fake.count() < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [r.outcome for r in fake.requests()] == ["hang", "hang", "stall:1"]
    started = time.monotonic()
    fake.stop()
    # Held sockets never end on their own: a stop that waited on them would not return.
    assert time.monotonic() - started < 3
    for sock in held:
        sock.close()


def test_slow_first_token_before_or_after_headers(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("gpt-4o", Reply(headers_delay=0.3), Reply(first_token_delay=0.3))
    url = f"{fake_openai.base_url}/chat/completions"
    with client(headers=OPENAI_HEADERS) as http:
        for expect_headers_late in (True, False):
            started = time.monotonic()
            with http.stream("POST", url, json=oa_body(stream=True)) as resp:
                headers_at = time.monotonic() - started
                next(resp.iter_lines())
                first_at = time.monotonic() - started
            assert first_at >= 0.3
            assert (headers_at >= 0.3) is expect_headers_late


def test_token_delay_paces_stream(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("gpt-4o", Reply(tokens=["a "] * 5, token_delay=0.06))
    started = time.monotonic()
    _, lines, err = oa_stream(fake_openai, oa_body(stream=True))
    assert err is None and contents(lines) == ["a "] * 5
    assert time.monotonic() - started >= 0.24


@pytest.mark.parametrize(("chunked", "rst"), [(True, False), (True, True), (False, False)])
def test_stream_cut(fake_openai: FakeOpenAI, chunked: bool, rst: bool) -> None:
    fake_openai.script("gpt-4o", Reply(cut_after=3, chunked=chunked, rst=rst))
    resp, lines, err = oa_stream(fake_openai, oa_body(stream=True))
    assert ("transfer-encoding" in resp.headers) is chunked
    # Chunked: the missing terminal chunk is a protocol error. Close-delimited: a clean
    # EOF, so only the missing finish_reason/[DONE] tells the client it was cut.
    if chunked:
        assert isinstance(err, httpx.TransportError)
    else:
        assert err is None
    if not rst:  # an RST may discard bytes the client had not read yet
        assert contents(lines) == fake_openai.tokens_for("gpt-4o")[:3]
    assert "data: [DONE]" not in lines
    assert finish_reasons(lines) == []
    record = fake_openai.requests()[0]
    assert (record.outcome, record.tokens_sent, record.completed) == ("cut:3", 3, False)


def test_stall_fires_read_timeout(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("gpt-4o", Reply(stall_after=2))
    _, lines, err = oa_stream(fake_openai, oa_body(stream=True), httpx.Timeout(5.0, read=0.3))
    assert isinstance(err, httpx.ReadTimeout)
    assert contents(lines) == fake_openai.tokens_for("gpt-4o")[:2]


def test_malformed_chunk_then_continues(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("gpt-4o", Reply(malformed_after=2))
    _, lines, err = oa_stream(fake_openai, oa_body(stream=True))
    assert err is None
    assert "data: {not json" in lines
    assert lines.index("data: {not json") == 3  # role chunk + 2 tokens before it
    assert contents(lines) == fake_openai.tokens_for("gpt-4o")
    assert lines[-1] == "data: [DONE]"


def test_missing_done(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("gpt-4o", Reply(omit_done=True))
    _, lines, err = oa_stream(fake_openai, oa_body(stream=True))
    assert err is None
    assert finish_reasons(lines) == ["stop"]
    assert json.loads(lines[-1].removeprefix("data: "))["usage"]["completion_tokens"] == 8
    assert "data: [DONE]" not in lines
    assert fake_openai.requests()[0].outcome == "no_done"


def test_anthropic_stream_events_and_faults(fake_anthropic: FakeAnthropic) -> None:
    url = f"{fake_anthropic.base_url}/v1/messages"
    fake_anthropic.configure(HAIKU, tokens=["Hi ", "there"])
    _, lines, err = read_stream(url, ant_body(stream=True), ANT_HEADERS)
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert err is None
    assert events == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    datas = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    assert datas[0]["message"]["usage"]["input_tokens"] == 4
    assert datas[3]["delta"] == {"type": "text_delta", "text": "Hi "}
    assert datas[6]["delta"]["stop_reason"] == "end_turn"
    assert datas[6]["usage"] == {"output_tokens": 2}

    fake_anthropic.script(HAIKU, Reply(error_after=1), Reply(omit_done=True))
    _, lines, _ = read_stream(url, ant_body(stream=True), ANT_HEADERS)
    assert lines[-2:] == [
        "event: error",
        'data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
    ]
    _, lines, _ = read_stream(url, ant_body(stream=True), ANT_HEADERS)
    assert "event: message_delta" in lines and "event: message_stop" not in lines


def test_context_length_bodies(fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> None:
    fake_openai.script("gpt-4o", ContextLength())
    error = oa_post(fake_openai, oa_body()).json()["error"]
    assert error["code"] == "context_length_exceeded"
    assert error["message"] == (
        "This model's maximum context length is 8192 tokens. "
        "However, your messages resulted in 9000 tokens."
    )
    fake_anthropic.script(HAIKU, ContextLength())
    resp = ant_post(fake_anthropic, ant_body())
    assert resp.status_code == 400
    assert resp.json()["error"] == {
        "type": "invalid_request_error",
        "message": "prompt is too long: 9000 tokens > 8192 maximum",
    }
    # A configured context window triggers the same error from the real prompt size.
    fake_openai.configure("small", context_window=3)
    error = oa_post(fake_openai, oa_body("small")).json()["error"]
    assert "resulted in 4 tokens" in error["message"]
    assert fake_openai.requests("small")[0].outcome == "context_length"


def test_content_filter(fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> None:
    fake_openai.script(
        "gpt-4o",
        ContentFilter(),
        ContentFilter(error_code="content_policy_violation"),
        ContentFilter(after=2),
    )
    assert oa_post(fake_openai, oa_body()).json()["error"]["code"] == "content_filter"
    assert oa_post(fake_openai, oa_body()).json()["error"]["code"] == "content_policy_violation"
    choice = oa_post(fake_openai, oa_body()).json()["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["content"] == "".join(fake_openai.tokens_for("gpt-4o")[:2])

    fake_anthropic.script(HAIKU, ContentFilter(after=1))
    assert ant_post(fake_anthropic, ant_body()).json()["stop_reason"] == "refusal"


def test_flapping_queues_and_defaults(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("a", *[Status(503)] * 2)
    flap: list[Behaviour] = [Status(502), Reply()]
    fake_openai.script("b", *flap * 2)
    for model in ("a", "a", "a", "b", "b", "b", "b"):
        oa_post(fake_openai, oa_body(model))
    assert [r.outcome for r in fake_openai.requests("a")] == ["status:503", "status:503", "ok"]
    assert [r.outcome for r in fake_openai.requests("b")] == ["status:502", "ok"] * 2

    fake_openai.configure("down", default=Status(500))
    fake_openai.script(None, Status(429))  # any model's next request
    fake_openai.default = Status(401)  # every model without its own default
    assert oa_post(fake_openai, oa_body("down")).status_code == 429
    assert oa_post(fake_openai, oa_body("down")).status_code == 500
    assert oa_post(fake_openai, oa_body("other")).status_code == 401
    assert fake_openai.pending("a") == 0
    assert fake_openai.count("down") == 2


def test_prefill(fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> None:
    tokens = ["one ", "two ", "three ", "four "]
    assert continuation(tokens, "one tw") == ["o ", "three ", "four "]
    assert continuation(tokens, "nope") is None

    fake_openai.configure("gpt-4o", tokens=tokens)
    messages = [
        {"role": "user", "content": "count"},
        {"role": "assistant", "content": "one two "},
    ]
    body = oa_post(fake_openai, oa_body(messages=messages)).json()
    assert body["choices"][0]["message"]["content"] == "three four "
    assert body["usage"]["completion_tokens"] == 2
    _, lines, _ = oa_stream(fake_openai, oa_body(stream=True, messages=messages))
    assert contents(lines) == ["three ", "four "]

    fake_openai.configure("gpt-4o", prefill=False)
    resp = oa_post(fake_openai, oa_body(messages=messages))
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == "assistant prefill not supported"
    assert fake_openai.requests()[-1].outcome == "prefill_refused"

    # Anthropic, like the real API, rejects a prefill ending in whitespace.
    resp = ant_post(fake_anthropic, ant_body(messages=messages))
    assert resp.status_code == 400
    assert "trailing whitespace" in resp.json()["error"]["message"]


def test_log_masks_keys(fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> None:
    oa_post(fake_openai, oa_body())
    ant_post(fake_anthropic, ant_body())
    for fake, raw, last4 in ((fake_openai, KEY, "1234"), (fake_anthropic, ANT_KEY, "5678")):
        log = fake.requests()
        assert raw not in repr(log)
        assert log[0].key_last4 == last4
    assert fake_openai.requests()[0].headers["authorization"] == "Bearer …1234"
    assert fake_anthropic.requests()[0].headers["x-api-key"] == "…5678"
    fake_openai.reset_log()
    assert fake_openai.count() == 0


def test_validation_and_unknown_paths(
    fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    url = f"{fake_openai.base_url}/chat/completions"
    assert request("POST", url, json=oa_body()).status_code == 401
    assert oa_post(fake_openai, {"model": "gpt-4o"}).status_code == 400
    assert request("GET", f"{fake_openai.root_url}/v2/nothing").status_code == 404
    assert [r.outcome for r in fake_openai.requests()] == [
        "rejected:401",
        "rejected:400",
        "not_found",
    ]
    no_version = {"x-api-key": ANT_KEY}
    resp = request(
        "POST", f"{fake_anthropic.base_url}/v1/messages", json=ant_body(), headers=no_version
    )
    assert resp.json()["error"]["message"] == "anthropic-version: header is required"
    no_max = ant_body()
    del no_max["max_tokens"]
    assert ant_post(fake_anthropic, no_max).json()["error"]["message"] == (
        "max_tokens: Field required"
    )


def test_keep_alive_and_threads(fake_openai: FakeOpenAI) -> None:
    with client(headers=OPENAI_HEADERS) as http:
        for _ in range(3):
            http.post(f"{fake_openai.base_url}/chat/completions", json=oa_body())
    assert len({r.connection for r in fake_openai.requests()}) == 1

    fake_openai.reset_log()
    threads = [
        threading.Thread(target=oa_post, args=(fake_openai, oa_body(f"m{i}"))) for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert fake_openai.count() == 8
