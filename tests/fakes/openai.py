"""OpenAI chat completions wire format (POST /v1/chat/completions, GET /v1/models)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from tests.fakes.behaviours import Status
from tests.fakes.content import ApiError, Fragment, Turn, sse
from tests.fakes.log import RequestRecord
from tests.fakes.provider import FakeProvider, Route
from tests.fakes.server import Connection, HttpRequest

# status -> (error.type, error.code, message) as OpenAI words them.
_STATUS_ERRORS: Mapping[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory",
          "Country, region, or territory not supported"),
    404: ("invalid_request_error", "model_not_found",
          "The model `{model}` does not exist or you do not have access to it."),
    408: ("timeout", None, "Request timed out."),
    409: ("invalid_request_error", None, "Conflict."),
    429: ("requests", "rate_limit_exceeded",
          "Rate limit reached for {model} on requests per min (RPM). Please try again in 1s."),
    500: ("server_error", None,
          "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later"),
    504: ("server_error", None, "Gateway timeout."),
    529: ("server_error", None, "Overloaded."),
}  # fmt: skip

_FILTER_MESSAGES = {
    "content_filter": "The response was filtered due to the prompt triggering content "
    "management policy. Please modify your prompt and retry.",
    "content_policy_violation": "Your request was rejected as a result of our safety system.",
}


class FakeOpenAI(FakeProvider):
    """OpenAI's API: base_url is http://127.0.0.1:PORT/v1 (clients append /chat/completions)."""

    finish_reasons: ClassVar[Mapping[str, str]] = {
        "stop": "stop",
        "length": "length",
        "content_filter": "content_filter",
        "tool_calls": "tool_calls",
    }
    listed_models: ClassVar[Sequence[str]] = ("gpt-4o", "gpt-4o-mini")
    owned_by = "openai"
    system_fingerprint = "fp_fake"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def routes(self) -> Mapping[tuple[str, str], Route]:
        return {
            ("POST", "/v1/chat/completions"): self.chat,
            ("POST", "/chat/completions"): self.chat,
            ("GET", "/v1/models"): self._list_models,
            ("GET", "/models"): self._list_models,
        }

    async def _list_models(self, req: HttpRequest, conn: Connection, rec: RequestRecord) -> None:
        data = [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": self.owned_by}
            for m in self.model_ids()
        ]
        await self.send_json(conn, rec, {"object": "list", "data": data})

    # --- requests ------------------------------------------------------------------

    def validate(self, req: HttpRequest, body: Mapping[str, Any]) -> ApiError | None:
        has_key = "authorization" in req.headers or "api-key" in req.headers
        if self.require_key and not has_key:
            return ApiError(
                401,
                "invalid_request_error",
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if not isinstance(body.get("model"), str):
            return ApiError(400, "invalid_request_error", "you must provide a model parameter")
        messages = body.get("messages")
        if not isinstance(messages, list):
            return ApiError(
                400,
                "invalid_request_error",
                "Missing required parameter: 'messages'.",
                code="missing_required_parameter",
                param="messages",
            )
        if not messages:
            return ApiError(
                400,
                "invalid_request_error",
                "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                "but got an empty array instead.",
                code="empty_array",
                param="messages",
            )
        return None

    def messages(self, body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        raw = body.get("messages")
        return [m for m in raw if isinstance(m, dict)] if isinstance(raw, list) else []

    def max_tokens(self, body: Mapping[str, Any]) -> int | None:
        for key in ("max_completion_tokens", "max_tokens"):
            value = body.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        return None

    def include_usage(self, body: Mapping[str, Any]) -> bool:
        options = body.get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True

    # --- errors --------------------------------------------------------------------

    def error_body(self, err: ApiError) -> dict[str, Any]:
        return {
            "error": {
                "message": err.message,
                "type": err.type,
                "param": err.param,
                "code": err.code,
            }
        }

    def status_error(self, status: Status, model: str | None) -> ApiError:
        err_type, code, message = _STATUS_ERRORS.get(
            status.code, ("server_error", None, f"HTTP {status.code}.")
        )
        return ApiError(
            status.code,
            status.error_type or err_type,
            status.message or message.format(model=model),
            code=status.error_code or code,
            headers=status.response_headers(),
        )

    def context_error(self, limit: int, tokens: int) -> ApiError:
        return ApiError(
            400,
            "invalid_request_error",
            f"This model's maximum context length is {limit} tokens. "
            f"However, your messages resulted in {tokens} tokens.",
            code="context_length_exceeded",
            param="messages",
        )

    def content_filter_error(self, error_code: str) -> ApiError:
        message = _FILTER_MESSAGES.get(error_code, _FILTER_MESSAGES["content_filter"])
        return ApiError(400, "invalid_request_error", message, code=error_code, param="prompt")

    def bad_request(self, message: str) -> ApiError:
        return ApiError(400, "invalid_request_error", message)

    def not_found(self, req: HttpRequest) -> ApiError:
        return ApiError(404, "invalid_request_error", f"Invalid URL ({req.method} {req.path})")

    def id_for(self, seq: int) -> str:
        return f"chatcmpl-fake{seq:06d}"

    def response_headers(self, seq: int) -> dict[str, str]:
        return {"x-request-id": f"req_fake{seq:06d}", "openai-processing-ms": "1"}

    # --- answers -------------------------------------------------------------------

    def _usage(self, turn: Turn, completion_tokens: int) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "prompt_tokens": turn.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": turn.prompt_tokens + completion_tokens,
        }
        # Details only when scripted, so every other test sees the same bodies as before.
        if turn.cached_tokens:
            usage["prompt_tokens_details"] = {"cached_tokens": turn.cached_tokens}
        if turn.reasoning_tokens:
            usage["completion_tokens_details"] = {"reasoning_tokens": turn.reasoning_tokens}
        return usage

    def completion(self, turn: Turn) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": turn.text, "refusal": None}
        if turn.tool_calls:
            message["content"] = turn.text or None  # as OpenAI sends a tool-only answer
            message["tool_calls"] = [
                {"id": c.id, "type": "function",
                 "function": {"name": c.name, "arguments": c.arguments}}
                for c in turn.tool_calls
            ]  # fmt: skip
        if turn.reasoning:
            message["reasoning_content"] = turn.reasoning_text
        return {
            "id": turn.id,
            "object": "chat.completion",
            "created": turn.created,
            "model": turn.answer_model,
            "system_fingerprint": self.system_fingerprint,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": turn.finish_reason,
                }
            ],
            "usage": self._usage(turn, len(turn.tokens) + len(turn.fragments)),
        }

    def _chunk(
        self, turn: Turn, delta: Mapping[str, Any], finish_reason: str | None = None
    ) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": turn.id,
            "object": "chat.completion.chunk",
            "created": turn.created,
            "model": turn.answer_model,
            "system_fingerprint": self.system_fingerprint,
            "choices": [
                {"index": 0, "delta": dict(delta), "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if turn.include_usage:
            chunk["usage"] = None  # the real API sends null until the last chunk
        return chunk

    def stream_head(self, turn: Turn) -> list[bytes]:
        head = [sse(self._chunk(turn, {"role": "assistant", "content": "", "refusal": None}))]
        # DeepSeek and vLLM stream reasoning as its own delta field, before the answer.
        head += [sse(self._chunk(turn, {"reasoning_content": r})) for r in turn.reasoning]
        return head

    def stream_token(self, turn: Turn, text: str) -> bytes:
        return sse(self._chunk(turn, {"content": text}))

    def stream_fragment(self, turn: Turn, fragment: Fragment) -> list[bytes]:
        call = fragment.call
        # OpenAI opens a call with its id and name and empty arguments, then sends the
        # arguments in pieces that carry only the call's index.
        if fragment.seq == 0:
            opening = {"index": call.index, "id": call.id, "type": "function",
                       "function": {"name": call.name, "arguments": ""}}  # fmt: skip
            first = [sse(self._chunk(turn, {"tool_calls": [opening]}))]
        else:
            first = []
        piece = {"index": call.index, "function": {"arguments": fragment.text}}
        return [*first, sse(self._chunk(turn, {"tool_calls": [piece]}))]

    def stream_tail(self, turn: Turn, sent: int) -> list[bytes]:
        events = [sse(self._chunk(turn, {}, turn.finish_reason))]
        if turn.include_usage:
            usage_chunk = self._chunk(turn, {})
            usage_chunk["choices"] = []
            usage_chunk["usage"] = self._usage(turn, sent)
            events.append(sse(usage_chunk))
        return events

    def stream_done(self, turn: Turn) -> bytes:
        return sse("[DONE]")

    def stream_malformed(self, turn: Turn) -> bytes:
        return b"data: {not json\n\n"

    def stream_error(self, turn: Turn) -> bytes:
        err = ApiError(500, "server_error", _STATUS_ERRORS[500][2])
        return sse(self.error_body(err))


def _tool_history_error(messages: list[Any]) -> ApiError | None:
    """OpenAI's 400 for a tool result that answers no earlier assistant tool call."""
    called: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict) and isinstance(call.get("id"), str):
                called.add(call["id"])
        if message.get("role") == "tool" and message.get("tool_call_id") not in called:
            return ApiError(
                400,
                "invalid_request_error",
                f"Invalid parameter: messages with role 'tool' must be a response to a "
                f"preceeding message with 'tool_calls'. (messages[{i}])",
                param=f"messages.[{i}].role",
            )
    return None
