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

A stream's headers go out with its first text, when the answering model is known (a
failover before the first text is invisible): model, fallback, request id, and the
attempts so far, the answering one last as ``model:streaming:ms_to_first_text``. The cost
is not known yet, so there is no cost header. The final chunk's ``x_switchboard`` object
carries the settled facts: cost, every attempt, and the final model, which differs from
the header's when a cut answer was continued by the next model. Each chunk's ``model`` is
the model that produced its text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from core.errors import SwitchboardError
from core.request import Attempt, Serving, Summary, Usage, micros_to_usd

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


def summary_headers(summary: Summary) -> dict[str, str]:
    return {
        "x-switchboard-request-id": summary.request_id,
        "x-switchboard-model": header_value(summary.model or "-"),
        "x-switchboard-fallback": "true" if summary.fallback_used else "false",
        "x-switchboard-attempts": attempts_header(summary.attempts),
        "x-switchboard-cost-usd": cost_text(summary),
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
    }


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
    }


def _attempt_info(attempt: Attempt) -> dict[str, Any]:
    info: dict[str, Any] = {name: getattr(attempt, name) for name in _ATTEMPT_FIELDS}
    info["prompt_tokens"] = attempt.usage.prompt_tokens
    info["completion_tokens"] = attempt.usage.completion_tokens
    info["cost_usd"] = None if attempt.cost_micros is None else usd_text(attempt.cost_micros)
    return info


def completion_body(text: str, summary: Summary, created: int) -> dict[str, Any]:
    return {
        "id": completion_id(summary.request_id),
        "object": "chat.completion",
        "created": created,
        "model": summary.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "finish_reason": summary.finish_reason or "stop",
                "logprobs": None,
            }
        ],
        "usage": usage_json(summary.answer_usage),
        "system_fingerprint": None,
        "x_switchboard": switchboard_info(summary),
    }


def chunk(
    chunk_id: str, created: int, model: str | None, delta: Mapping[str, Any], finish: str | None
) -> dict[str, Any]:
    choice = {"index": 0, "delta": dict(delta), "finish_reason": finish, "logprobs": None}
    return {"id": chunk_id, "object": "chat.completion.chunk", "created": created,
            "model": model, "choices": [choice]}  # fmt: skip


def usage_chunk(chunk_id: str, created: int, summary: Summary) -> dict[str, Any]:
    # As OpenAI sends it with stream_options.include_usage: no choices, only usage.
    out = chunk(chunk_id, created, summary.model, {}, None)
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
