"""Anthropic Messages wire format (POST /v1/messages with its named SSE events)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from tests.fakes.behaviours import Status
from tests.fakes.content import ApiError, Fragment, Turn, content_text, sse
from tests.fakes.log import RequestRecord
from tests.fakes.provider import FakeProvider, Route
from tests.fakes.server import Connection, HttpRequest

# status -> (error.type, message) as Anthropic words them.
_STATUS_ERRORS: Mapping[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error",
          "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "model: {model}"),
    408: ("timeout_error", "Request timed out."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error",
          "Number of requests has exceeded your per-minute rate limit. Please try again later."),
    500: ("api_error", "Internal server error"),
    502: ("api_error", "Bad gateway"),
    503: ("api_error", "Service unavailable"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}  # fmt: skip


class FakeAnthropic(FakeProvider):
    """Anthropic's API: base_url is the host root (litellm appends /v1/messages itself)."""

    finish_reasons: ClassVar[Mapping[str, str]] = {
        "stop": "end_turn",
        "length": "max_tokens",
        "content_filter": "refusal",
        "tool_calls": "tool_use",
    }
    listed_models = ("claude-3-5-haiku-20241022", "claude-sonnet-4-20250514")

    @property
    def base_url(self) -> str:
        return self.root_url

    def routes(self) -> Mapping[tuple[str, str], Route]:
        return {
            ("POST", "/v1/messages"): self.chat,
            ("GET", "/v1/models"): self._list_models,
        }

    async def _list_models(self, req: HttpRequest, conn: Connection, rec: RequestRecord) -> None:
        ids = self.model_ids()
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2024-10-22T00:00:00Z"}
            for m in ids
        ]
        payload = {
            "data": data,
            "has_more": False,
            "first_id": ids[0] if ids else None,
            "last_id": ids[-1] if ids else None,
        }
        await self.send_json(conn, rec, payload)

    # --- requests ------------------------------------------------------------------

    def validate(self, req: HttpRequest, body: Mapping[str, Any]) -> ApiError | None:
        has_key = "x-api-key" in req.headers or "authorization" in req.headers
        if self.require_key and not has_key:
            return ApiError(401, "authentication_error", "x-api-key header is required")
        if "anthropic-version" not in req.headers:
            return self.bad_request("anthropic-version: header is required")
        for name in ("model", "messages", "max_tokens"):
            if name not in body:
                return self.bad_request(f"{name}: Field required")
        if not isinstance(body.get("model"), str):
            return self.bad_request("model: Input should be a valid string")
        if not isinstance(body.get("messages"), list):
            return self.bad_request("messages: Input should be a valid list")
        return self._tool_history_error(body)

    def _tool_history_error(self, body: Mapping[str, Any]) -> ApiError | None:
        """Anthropic's 400s for tool blocks: each result answers a tool_use just before it."""
        previous: set[str] = set()
        for i, message in enumerate(self.messages(body)):
            blocks = [b for b in _blocks(message.get("content")) if isinstance(b, dict)]
            kinds = {b.get("type") for b in blocks}
            if kinds & {"tool_use", "tool_result"} and not body.get("tools"):
                return self.bad_request(
                    "Requests which include `tool_use` or `tool_result` blocks must define tools."
                )
            for block in blocks:
                if block.get("type") == "tool_result" and block.get("tool_use_id") not in previous:
                    return self.bad_request(
                        f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` "
                        "blocks. Each `tool_result` block must have a corresponding `tool_use` "
                        "block in the previous message."
                    )
            previous = {str(b.get("id")) for b in blocks if b.get("type") == "tool_use"}
        return self._thinking_error(body)

    def _thinking_error(self, body: Mapping[str, Any]) -> ApiError | None:
        """With thinking on, the last assistant turn that called a tool starts with its
        signed thinking block, handed back as it came."""
        thinking = body.get("thinking")
        if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
            return None
        turns = [
            (i, _blocks(m.get("content")))
            for i, m in enumerate(self.messages(body))
            if m.get("role") == "assistant"
        ]
        calling = [(i, b) for i, b in turns if any(x.get("type") == "tool_use" for x in b)]
        if not calling:
            return None
        i, blocks = calling[-1]
        first = blocks[0] if blocks else {}
        if first.get("type") != "thinking" or first.get("signature") != _SIGNATURE:
            return self.bad_request(
                f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, "
                f"but found `{first.get('type')}`. When `thinking` is enabled, a final "
                "`assistant` message must start with a thinking block."
            )
        return None

    def messages(self, body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        raw = body.get("messages")
        return [m for m in raw if isinstance(m, dict)] if isinstance(raw, list) else []

    def system_text(self, body: Mapping[str, Any]) -> str:
        return content_text(body.get("system"))

    def max_tokens(self, body: Mapping[str, Any]) -> int | None:
        value = body.get("max_tokens")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def include_usage(self, body: Mapping[str, Any]) -> bool:
        return True  # usage always rides on message_start / message_delta

    def prefill_error(self, prefix: str) -> ApiError | None:
        # The real API rejects this; clients must rstrip the prefill (litellm does).
        if prefix != prefix.rstrip():
            return self.bad_request(
                "messages: final assistant content cannot end with trailing whitespace"
            )
        return None

    # --- errors --------------------------------------------------------------------

    def error_body(self, err: ApiError) -> dict[str, Any]:
        return {"type": "error", "error": {"type": err.type, "message": err.message}}

    def status_error(self, status: Status, model: str | None) -> ApiError:
        err_type, message = _STATUS_ERRORS.get(status.code, ("api_error", f"HTTP {status.code}"))
        return ApiError(
            status.code,
            status.error_type or err_type,
            status.message or message.format(model=model),
            headers=status.response_headers(),
        )

    def context_error(self, limit: int, tokens: int) -> ApiError:
        return self.bad_request(f"prompt is too long: {tokens} tokens > {limit} maximum")

    def content_filter_error(self, error_code: str) -> ApiError:
        return self.bad_request("Output blocked by content filtering policy")

    def bad_request(self, message: str) -> ApiError:
        return ApiError(400, "invalid_request_error", message)

    def not_found(self, req: HttpRequest) -> ApiError:
        return ApiError(404, "not_found_error", "Not Found")

    def id_for(self, seq: int) -> str:
        return f"msg_fake{seq:06d}"

    def response_headers(self, seq: int) -> dict[str, str]:
        return {"request-id": f"req_fake{seq:06d}", "anthropic-organization-id": "fake-org"}

    # --- answers -------------------------------------------------------------------

    def completion(self, turn: Turn) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if turn.reasoning:
            content.append(
                {"type": "thinking", "thinking": turn.reasoning_text, "signature": _SIGNATURE}
            )
        if turn.tokens or not turn.tool_calls:
            content.append({"type": "text", "text": turn.text})
        content += [
            {"type": "tool_use", "id": c.id, "name": c.name, "input": json.loads(c.arguments)}
            for c in turn.tool_calls
        ]
        output = len(turn.tokens) + len(turn.fragments)
        return {
            "id": turn.id,
            "type": "message",
            "role": "assistant",
            "model": turn.answer_model,
            "content": content,
            "stop_reason": turn.finish_reason,
            "stop_sequence": None,
            "usage": self._usage(turn.prompt_tokens, output),
        }

    @staticmethod
    def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
        return {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
        }

    def stream_head(self, turn: Turn) -> list[bytes]:
        message: dict[str, Any] = {
            "id": turn.id,
            "type": "message",
            "role": "assistant",
            "model": turn.answer_model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self._usage(turn.prompt_tokens, 1),
        }
        events = [sse({"type": "message_start", "message": message}, "message_start")]
        if turn.reasoning:
            events += _block_start(0, {"type": "thinking", "thinking": ""})
            events += [
                _block_delta(0, {"type": "thinking_delta", "thinking": r}) for r in turn.reasoning
            ]
            events.append(_block_delta(0, {"type": "signature_delta", "signature": _SIGNATURE}))
            events.append(_block_stop(0))
        text = _text_index(turn)
        if text is not None:
            events += _block_start(text, {"type": "text", "text": ""})
        return [*events, sse({"type": "ping"}, "ping")]

    def stream_token(self, turn: Turn, text: str) -> bytes:
        delta = {"type": "text_delta", "text": text}
        return _block_delta(_text_index(turn) or 0, delta)

    def stream_fragment(self, turn: Turn, fragment: Fragment) -> list[bytes]:
        call = fragment.call
        index = _first_tool_index(turn) + call.index
        events: list[bytes] = []
        if fragment.seq == 0:
            if index > 0 and (call.index > 0 or _text_index(turn) is not None):
                events.append(_block_stop(index - 1))  # the text or previous call ends
            block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
            events += _block_start(index, block)
        delta = {"type": "input_json_delta", "partial_json": fragment.text}
        return [*events, _block_delta(index, delta)]

    def stream_tail(self, turn: Turn, sent: int) -> list[bytes]:
        delta = {"stop_reason": turn.finish_reason, "stop_sequence": None}
        last = _first_tool_index(turn) + len(turn.tool_calls) - 1
        return [
            _block_stop(max(last, 0)),
            sse({"type": "message_delta", "delta": delta, "usage": {"output_tokens": sent}},
                "message_delta"),
        ]  # fmt: skip

    def stream_done(self, turn: Turn) -> bytes:
        return sse({"type": "message_stop"}, "message_stop")

    def stream_malformed(self, turn: Turn) -> bytes:
        return b"event: content_block_delta\ndata: {not json\n\n"

    def stream_error(self, turn: Turn) -> bytes:
        err = ApiError(529, "overloaded_error", "Overloaded")
        return sse(self.error_body(err), "error")


_SIGNATURE = "EqQBCkYIBxgCKkBfakeSignatureOfTheThinkingBlock"


def _blocks(content: Any) -> list[Any]:
    return content if isinstance(content, list) else []


def _text_index(turn: Turn) -> int | None:
    """The text block's index: after a thinking block; none for a tool-only answer."""
    if turn.tool_calls and not turn.tokens:
        return None
    return 1 if turn.reasoning else 0


def _first_tool_index(turn: Turn) -> int:
    return (1 if turn.reasoning else 0) + (0 if _text_index(turn) is None else 1)


def _block_start(index: int, block: Mapping[str, Any]) -> list[bytes]:
    payload = {"type": "content_block_start", "index": index, "content_block": dict(block)}
    return [sse(payload, "content_block_start")]


def _block_delta(index: int, delta: Mapping[str, Any]) -> bytes:
    payload = {"type": "content_block_delta", "index": index, "delta": dict(delta)}
    return sse(payload, "content_block_delta")


def _block_stop(index: int) -> bytes:
    return sse({"type": "content_block_stop", "index": index}, "content_block_stop")
