"""Google AI Studio (Gemini) wire format: POST /v1beta/models/{model}:generateContent, or
:streamGenerateContent?alt=sse, with the model in the path and usage in ``usageMetadata``."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, ClassVar

from tests.fakes.behaviours import Status
from tests.fakes.content import ApiError, Fragment, Turn, content_text, sse
from tests.fakes.log import RequestRecord
from tests.fakes.provider import FakeProvider, Route
from tests.fakes.server import Connection, HttpRequest

# status -> google.rpc status name, as the API words errors.
_STATUS_NAMES: Mapping[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class FakeGemini(FakeProvider):
    """Gemini's API: base_url ends in /v1beta (litellm appends /models/{model}:{method})."""

    finish_reasons: ClassVar[Mapping[str, str]] = {
        "stop": "STOP",
        "length": "MAX_TOKENS",
        "content_filter": "SAFETY",
    }
    listed_models = ("gemini-2.5-flash",)

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1beta"

    def routes(self) -> Mapping[tuple[str, str], Route]:
        # The model is in the path: one pair of routes per model the fake knows.
        table: dict[tuple[str, str], Route] = {}
        for model in self.model_ids():
            for method, stream in (("generateContent", False), ("streamGenerateContent", True)):
                table[("POST", f"/v1beta/models/{model}:{method}")] = self._route(model, stream)
        return table

    def _route(self, model: str, stream: bool) -> Route:
        async def handle(req: HttpRequest, conn: Connection, record: RequestRecord) -> None:
            # The shared chat flow reads model and stream from the body: put them there.
            try:
                body = json.loads(req.body)
            except (json.JSONDecodeError, UnicodeDecodeError):
                body = None
            if isinstance(body, dict):
                body = {**body, "model": model, "stream": stream}
                req = dataclasses.replace(req, body=json.dumps(body).encode())
            await self.chat(req, conn, record)

        return handle

    # --- requests ------------------------------------------------------------------

    def validate(self, req: HttpRequest, body: Mapping[str, Any]) -> ApiError | None:
        if self.require_key and "x-goog-api-key" not in req.headers and "key=" not in req.query:
            return ApiError(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
            )
        if not isinstance(body.get("contents"), list):
            return self.bad_request("* GenerateContentRequest.contents: contents is not specified")
        return None

    def messages(self, body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        raw = body.get("contents")
        contents = [c for c in raw if isinstance(c, dict)] if isinstance(raw, list) else []
        # "model" is Gemini's assistant role.
        return [
            {
                "role": "assistant" if c.get("role") == "model" else "user",
                "content": c.get("parts"),
            }
            for c in contents
        ]

    def system_text(self, body: Mapping[str, Any]) -> str:
        system = body.get("system_instruction") or body.get("systemInstruction")
        return content_text(system.get("parts")) if isinstance(system, dict) else ""

    def max_tokens(self, body: Mapping[str, Any]) -> int | None:
        config = body.get("generationConfig") or body.get("generation_config") or {}
        value = config.get("maxOutputTokens") or config.get("max_output_tokens")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def include_usage(self, body: Mapping[str, Any]) -> bool:
        return True  # usageMetadata always comes with the last chunk

    # --- errors --------------------------------------------------------------------

    def error_body(self, err: ApiError) -> dict[str, Any]:
        return {"error": {"code": err.status, "message": err.message, "status": err.type}}

    def status_error(self, status: Status, model: str | None) -> ApiError:
        name = _STATUS_NAMES.get(status.code, "UNKNOWN")
        message = status.message or f"The service returned {name} for {model}."
        return ApiError(
            status.code, status.error_type or name, message, headers=status.response_headers()
        )

    def context_error(self, limit: int, tokens: int) -> ApiError:
        return self.bad_request(
            f"The input token count ({tokens}) exceeds the maximum number of tokens "
            f"allowed ({limit})."
        )

    def content_filter_error(self, error_code: str) -> ApiError:
        return self.bad_request("The request was blocked because of its content (SAFETY).")

    def bad_request(self, message: str) -> ApiError:
        return ApiError(400, "INVALID_ARGUMENT", message)

    def not_found(self, req: HttpRequest) -> ApiError:
        return ApiError(404, "NOT_FOUND", f"models/{req.path.rsplit('/', 1)[-1]} is not found")

    # --- answers -------------------------------------------------------------------

    @staticmethod
    def _usage(turn: Turn, output_tokens: int) -> dict[str, int]:
        # promptTokenCount includes the cached part; thoughts are counted apart from output.
        usage = {
            "promptTokenCount": turn.prompt_tokens,
            "candidatesTokenCount": output_tokens,
            "totalTokenCount": turn.prompt_tokens + output_tokens,
        }
        if turn.cached_tokens:
            usage["cachedContentTokenCount"] = turn.cached_tokens
        return usage

    @staticmethod
    def _candidate(text: str, finish: str | None = None) -> dict[str, Any]:
        candidate: dict[str, Any] = {
            "content": {"parts": [{"text": text}], "role": "model"},
            "index": 0,
        }
        if finish is not None:
            candidate["finishReason"] = finish
        return candidate

    def completion(self, turn: Turn) -> dict[str, Any]:
        return {
            "candidates": [self._candidate(turn.text, turn.finish_reason)],
            "usageMetadata": self._usage(turn, len(turn.tokens)),
            "modelVersion": turn.model,
            "responseId": turn.id,
        }

    def stream_head(self, turn: Turn) -> list[bytes]:
        return []  # Gemini's first event already carries text

    def stream_token(self, turn: Turn, text: str) -> bytes:
        return sse({"candidates": [self._candidate(text)], "modelVersion": turn.model})

    def stream_fragment(self, turn: Turn, fragment: Fragment) -> list[bytes]:
        # Gemini sends a function call whole, its arguments an object: once, at its first
        # fragment.
        if fragment.seq:
            return []
        call = fragment.call
        part = {"functionCall": {"name": call.name, "args": json.loads(call.arguments or "{}")}}
        candidate = {"content": {"role": "model", "parts": [part]}, "index": 0}
        return [sse({"candidates": [candidate], "modelVersion": turn.model})]

    def stream_tail(self, turn: Turn, sent: int) -> list[bytes]:
        last = {
            "candidates": [self._candidate("", turn.finish_reason)],
            "usageMetadata": self._usage(turn, sent),
            "modelVersion": turn.model,
            "responseId": turn.id,
        }
        return [sse(last)]

    def stream_done(self, turn: Turn) -> bytes:
        return b""  # the stream just ends

    def stream_malformed(self, turn: Turn) -> bytes:
        return b"data: {not json\n\n"

    def stream_error(self, turn: Turn) -> bytes:
        return sse(self.error_body(ApiError(503, "UNAVAILABLE", "The model is overloaded.")))
