"""The OpenAI chat-completions response, as pure functions over dicts.

A ``Summary`` (and the text) becomes a ``chat.completion`` object, SSE chunks, headers
and OpenAI-shaped error bodies. Requests are parsed in core/api/openai_request.py;
core/api/chat_completions.py does the HTTP around both.

Response headers of a whole (non-streamed) answer:

* ``x-switchboard-model``: the model that answered (``-`` if none did)
* ``x-switchboard-fallback``: ``true`` when a model other than the first answered
* ``x-switchboard-attempts``: one ``model:outcome:latency_ms`` item per attempt, in
  order, comma-separated, e.g. ``openai/gpt-4o:error:812,anthropic/claude-haiku-4-5:ok:640``.
  Model ids can contain ``:`` (``ollama/llama3:8b``), so split each item from the
  right (``item.rsplit(":", 2)``). A ``,`` or ``%`` or non-ASCII character in a model id
  is percent-encoded, so splitting the list on ``,`` is always safe.
* ``x-switchboard-cost-usd``: the exact cost as a decimal string (``0.000005``), or
  ``unpriced`` when any billed model has no price
* ``x-switchboard-request-id``: the id of the request in the usage ledger
* ``x-switchboard-dropped-params``: the request fields left out because a model does not
  take them and the caller or the route asked to drop such fields (``drop_params``),
  comma-separated; absent when none were

A stream's headers go out with its first text, when the answering model is known (a
failover before the first text is invisible): model, fallback, request id, and the
attempts so far, the answering one last as ``model:streaming:ms_to_first_text``. The cost
is not known yet, so there is no cost header. The final chunk's ``x_switchboard`` object
carries the settled facts: cost, every attempt, and the final model, which differs from
the header's when a cut answer was continued by the next model.

``model`` in the body and in each chunk is the name the answering provider reported
(``gpt-4o-mini-2024-07-18``), as OpenAI itself answers, so client-side cost trackers know
it; the catalog id (``openai/gpt-4o-mini``) is in ``x-switchboard-model`` and in
``x_switchboard``. Tool calls arrive whole (core/gateway/toolcalls.py): in a stream, one
chunk per call carrying its id, name and all its arguments. Reasoning text is
``reasoning_content``, on the message and on deltas, as DeepSeek and vLLM send it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from core.errors import SwitchboardError
from core.request import Attempt, Serving, Summary, ToolCall, Usage, micros_to_usd

_ATTEMPT_FIELDS = ("model", "provider", "outcome", "latency_ms", "status_code")
# Printable ASCII except the two characters the attempts header gives meaning to.
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "%,")


# --- shaping --------------------------------------------------------------------------


def completion_id(request_id: str) -> str:
    return f"chatcmpl-{request_id}"


def header_value(text: str) -> str:
    """Text safe for an HTTP header (latin-1 only) and for the comma-separated lists."""
    return quote(text, safe=_HEADER_SAFE)


def usd_text(micros: int) -> str:
    """Exact dollars, as few digits as the amount needs (``0.000005``)."""
    return f"{micros_to_usd(micros).normalize():f}"


def cost_text(summary: Summary) -> str:
    if summary.cost_micros is None or not summary.priced:
        return "unpriced"
    return usd_text(summary.cost_micros)


def attempts_header(attempts: Sequence[Attempt]) -> str:
    return ",".join(f"{header_value(a.model)}:{a.outcome}:{a.latency_ms}" for a in attempts)


DROPPED_HEADER = "x-switchboard-dropped-params"


def _dropped(names: Sequence[str]) -> dict[str, str]:
    return {DROPPED_HEADER: ",".join(header_value(n) for n in names)} if names else {}


def summary_headers(summary: Summary) -> dict[str, str]:
    return {
        "x-switchboard-request-id": summary.request_id,
        "x-switchboard-model": header_value(summary.model or "-"),
        "x-switchboard-fallback": "true" if summary.fallback_used else "false",
        "x-switchboard-attempts": attempts_header(summary.attempts),
        "x-switchboard-cost-usd": cost_text(summary),
        **_dropped(summary.dropped_params),
    }


def stream_headers(serving: Serving, request_id: str) -> dict[str, str]:
    """A stream's headers at its first text: who answers, and the attempts that led there."""
    answering = f"{header_value(serving.model)}:streaming:{serving.latency_ms}"
    before = attempts_header(serving.attempts)
    return {
        "x-switchboard-request-id": request_id,
        "x-switchboard-model": header_value(serving.model),
        "x-switchboard-fallback": "true" if serving.fallback else "false",
        "x-switchboard-attempts": f"{before},{answering}" if before else answering,
        **_dropped(serving.dropped_params),
    }


def answer_model(summary: Summary) -> str | None:
    """The body's ``model``: the provider's name for it, else the catalog id."""
    return summary.reported_model or summary.model


def usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def switchboard_info(summary: Summary) -> dict[str, Any]:
    """What the headers say, as JSON: streams send it in their last chunk."""
    return {
        "request_id": summary.request_id,
        "status": summary.status,
        "model": summary.model,
        "provider": summary.provider,
        "fallback": summary.fallback_used,
        "cost_usd": cost_text(summary),
        "attempts": [_attempt_info(a) for a in summary.attempts],
        "dropped_params": list(summary.dropped_params),
    }


def _attempt_info(attempt: Attempt) -> dict[str, Any]:
    info: dict[str, Any] = {name: getattr(attempt, name) for name in _ATTEMPT_FIELDS}
    info["prompt_tokens"] = attempt.usage.prompt_tokens
    info["completion_tokens"] = attempt.usage.completion_tokens
    info["cost_usd"] = None if attempt.cost_micros is None else usd_text(attempt.cost_micros)
    return info


def tool_calls_json(calls: Sequence[ToolCall], *, delta: bool = False) -> list[dict[str, Any]]:
    out = []
    for call in calls:
        item: dict[str, Any] = {
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }
        out.append({"index": call.index, **item} if delta else item)
    return out


def message_json(
    text: str,
    reasoning: str,
    calls: Sequence[ToolCall],
    *,
    legacy: bool = False,
    thinking_blocks: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The answer's message; ``legacy``: the caller used `functions`, so `function_call`."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text if text or not calls else None,
        "refusal": None,
    }
    if reasoning:
        message["reasoning_content"] = reasoning
    if thinking_blocks:  # Claude's signed thinking: send it back with the next turn
        message["thinking_blocks"] = [dict(b) for b in thinking_blocks]
    if calls and legacy:
        message["function_call"] = {"name": calls[0].name, "arguments": calls[0].arguments}
    elif calls:
        message["tool_calls"] = tool_calls_json(calls)
    return message


def finish_reason(summary: Summary, *, legacy: bool = False) -> str:
    finish = summary.finish_reason or "stop"
    return "function_call" if legacy and finish == "tool_calls" else finish


def completion_body(
    text: str,
    summary: Summary,
    created: int,
    *,
    reasoning: str = "",
    tool_calls: Sequence[ToolCall] = (),
    legacy: bool = False,
    thinking_blocks: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    message = message_json(
        text, reasoning, tool_calls, legacy=legacy, thinking_blocks=thinking_blocks
    )
    return {
        "id": completion_id(summary.request_id),
        "object": "chat.completion",
        "created": created,
        "model": answer_model(summary),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason(summary, legacy=legacy),
                "logprobs": None,
            }
        ],
        "usage": usage_json(summary.answer_usage),
        "system_fingerprint": None,
        "x_switchboard": switchboard_info(summary),
    }


def tool_call_delta(call: ToolCall, *, legacy: bool = False) -> dict[str, Any]:
    """A whole call as a stream delta (or the legacy `function_call` delta)."""
    if legacy:
        return {"function_call": {"name": call.name, "arguments": call.arguments}}
    return {"tool_calls": tool_calls_json([call], delta=True)}


def chunk(
    chunk_id: str, created: int, model: str | None, delta: Mapping[str, Any], finish: str | None
) -> dict[str, Any]:
    choice = {"index": 0, "delta": dict(delta), "finish_reason": finish, "logprobs": None}
    return {"id": chunk_id, "object": "chat.completion.chunk", "created": created,
            "model": model, "choices": [choice]}  # fmt: skip


def usage_chunk(chunk_id: str, created: int, summary: Summary) -> dict[str, Any]:
    # As OpenAI sends it with stream_options.include_usage: no choices, only usage.
    out = chunk(chunk_id, created, answer_model(summary), {}, None)
    return {**out, "choices": [], "usage": usage_json(summary.answer_usage)}


def error_body(message: str, kind: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": code, "param": None}}


def error_from(exc: SwitchboardError) -> dict[str, Any]:
    return error_body(exc.message, exc.kind, exc.code)


def sse(data: Mapping[str, Any] | str) -> bytes:
    """One server-sent event; the OpenAI stream uses bare `data:` lines only."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


SSE_DONE = sse("[DONE]")
