"""``POST /v1/chat/completions``: OpenAI chat completions through the gateway, whole or as SSE.

The wire format lives in core/api/openai_request.py (in) and core/api/openai_format.py
(out, headers documented there); this module drives the gateway and writes the stream.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from core.api import openai_format as fmt
from core.api import openai_request
from core.api.context import ApiContext, Authed, error_response, read_body, unexpected
from core.errors import SwitchboardError
from core.gateway.gateway import Gateway
from core.request import Done, StreamEvent, Summary, TextDelta, ToolCall

SSE_HEADERS = MappingProxyType({"cache-control": "no-cache", "x-accel-buffering": "no"})


async def _aclose(events: AsyncGenerator[StreamEvent, None]) -> None:
    # Closing the gateway's stream makes it record the request as stopped and release
    # its upstream call.
    await events.aclose()


async def complete(gateway: Gateway, call: openai_request.ChatCall, created: int) -> Response:
    parts: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[ToolCall] = []
    thinking: list[dict[str, Any]] = []
    summary: Summary | None = None
    async for event in gateway.stream(call.request):
        if isinstance(event, TextDelta):
            parts.append(event.text)
            reasoning.append(event.reasoning)
            tool_calls.extend(event.tool_calls)
            thinking.extend(dict(b) for b in event.thinking_blocks)
        else:
            summary = event.summary
    if summary is None:
        raise RuntimeError("the gateway ended a request without a summary")
    if summary.error is not None:
        return error_response(summary.error, summary.request_id, summary)
    body = fmt.completion_body(
        "".join(parts),
        summary,
        created,
        reasoning="".join(reasoning),
        tool_calls=tool_calls,
        legacy=call.legacy_functions,
        thinking_blocks=thinking,
    )
    return JSONResponse(body, headers=fmt.summary_headers(summary))


class EventStream(StreamingResponse):
    """An SSE response that always closes its generator, even if the client went away."""

    def __init__(self, body: AsyncGenerator[bytes, None], headers: Mapping[str, str]) -> None:
        super().__init__(body, media_type="text/event-stream", headers=headers)
        self._body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Starlette leaves a generator suspended at `yield` when a send fails or the
            # disconnect watcher cancels it; close it so the gateway stream closes now.
            await self._body.aclose()


def _answering(first: StreamEvent, requested: str) -> str:
    """The model a stream's chunks name: the provider's name for the first answerer."""
    if isinstance(first, TextDelta):
        serving = first.serving
        return (serving.reported_model or serving.model) if serving else requested
    return fmt.answer_model(first.summary) or requested


def _deltas(event: TextDelta, legacy: bool) -> list[dict[str, Any]]:
    """One event as chunk deltas: its reasoning, its text, then each whole tool call."""
    deltas: list[dict[str, Any]] = []
    if event.reasoning:
        deltas.append({"reasoning_content": event.reasoning})
    if event.text:
        deltas.append({"content": event.text})
    if event.thinking_blocks:
        deltas.append({"thinking_blocks": [dict(b) for b in event.thinking_blocks]})
    deltas += [fmt.tool_call_delta(c, legacy=legacy) for c in event.tool_calls]
    return deltas


def _stream_headers(first: StreamEvent, stream_id: str) -> dict[str, str]:
    if isinstance(first, Done):  # it ended without text: every fact is known, cost too
        return {**SSE_HEADERS, **fmt.summary_headers(first.summary)}
    if first.serving is None:  # the gateway always sets it; never fail a stream over it
        return {**SSE_HEADERS, "x-switchboard-request-id": stream_id}
    return {**SSE_HEADERS, **fmt.stream_headers(first.serving, stream_id)}


async def _sse_body(
    first: StreamEvent,
    events: AsyncGenerator[StreamEvent, None],
    call: openai_request.ChatCall,
    stream_id: str,
    created: int,
    token: str,
) -> AsyncGenerator[bytes, None]:
    chunk_id = fmt.completion_id(stream_id)
    model = _answering(first, call.request.model)
    try:
        yield fmt.sse(
            fmt.chunk(chunk_id, created, model, {"role": "assistant", "content": ""}, None)
        )
        event = first
        legacy = call.legacy_functions
        while isinstance(event, TextDelta):
            if event.serving is not None:  # a continuation: the next model writes on
                model = event.serving.reported_model or event.serving.model
            for delta in _deltas(event, legacy):
                yield fmt.sse(fmt.chunk(chunk_id, created, model, delta, None))
            event = await anext(events)
        summary = event.summary
        info = fmt.switchboard_info(summary)
        if summary.error is not None:
            # Cut after text and not completed: an error event and no [DONE], so a client
            # cannot mistake the partial text for a whole answer (the SDK raises APIError).
            yield fmt.sse({**fmt.error_from(summary.error), "x_switchboard": info})
            return
        finish = fmt.finish_reason(summary, legacy=legacy)
        last = fmt.chunk(chunk_id, created, fmt.answer_model(summary) or model, {}, finish)
        if call.include_usage:
            yield fmt.sse(last)
            last = fmt.usage_chunk(chunk_id, created, summary)
        yield fmt.sse({**last, "x_switchboard": info})
        yield fmt.SSE_DONE
    except SwitchboardError as exc:
        yield fmt.sse(fmt.error_from(exc))
    except Exception as exc:
        yield fmt.sse(unexpected(exc, stream_id, "chat stream", token))
    finally:
        await _aclose(events)


async def stream(
    gateway: Gateway, call: openai_request.ChatCall, stream_id: str, created: int, token: str
) -> Response:
    events = gateway.stream(call.request)
    try:
        # Hold the headers until the first text or the end: a failure before any text
        # gets a real status, and by the first text the answering model is known.
        first = await anext(events)
    except BaseException:
        await _aclose(events)
        raise
    if isinstance(first, Done) and first.summary.error is not None:
        await _aclose(events)
        return error_response(first.summary.error, first.summary.request_id, first.summary)
    headers = _stream_headers(first, stream_id)
    return EventStream(_sse_body(first, events, call, stream_id, created, token), headers)


async def chat_completions(ctx: ApiContext, request: Request, auth: Authed) -> Response:
    raw = await read_body(request, ctx.settings.api_max_body_bytes)
    call = openai_request.parse_chat(openai_request.parse_json(raw), auth.caller, auth.request_id)
    # The caller's own token is scrubbed from the answer too, should an upstream echo it.
    call = replace(call, request=replace(call.request, scrub=(auth.token,)))
    created = int(ctx.clock().timestamp())
    gateway = auth.runtime.gateway
    if call.request.stream:
        return await stream(gateway, call, auth.request_id, created, auth.token)
    return await complete(gateway, call, created)
