"""Shared machinery of the fakes: scripts, the request log, and the chat flow.

Subclasses (openai.py, anthropic.py) supply only the wire format: paths, request
validation, error bodies and the JSON/SSE shapes of an answer.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import ssl
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Self

from tests.fakes.behaviours import (
    Behaviour,
    ContentFilter,
    ContextLength,
    Garbage,
    Hang,
    Reply,
    Reset,
    Status,
    outcome_label,
)
from tests.fakes.content import (
    DEFAULT_TOKEN_COUNT,
    ApiError,
    CalledTool,
    Fragment,
    Turn,
    content_text,
    continuation,
    default_tokens,
    dumps,
)
from tests.fakes.echo import echoed, filler
from tests.fakes.log import RequestLog, RequestRecord, mask_headers
from tests.fakes.server import BackgroundServer, Connection, HttpRequest


@dataclass
class ModelConfig:
    tokens: list[str] | None = None
    prefill: bool = True  # False: a trailing assistant message gets a 400
    default: Behaviour | None = None
    context_window: int | None = None  # prompts larger than this get a context error
    reported: str | None = None  # the model name answers carry (e.g. a dated snapshot)


Route = Callable[[HttpRequest, Connection, RequestRecord], Awaitable[None]]


class FakeProvider(ABC):
    """A fake LLM API on 127.0.0.1:<random port>; use as a context manager."""

    #: Provider names of the generic finish reasons "stop", "length", "content_filter".
    finish_reasons: ClassVar[Mapping[str, str]] = {}
    #: Model ids listed by the models endpoint(s) besides configured ones.
    listed_models: ClassVar[Sequence[str]] = ()
    #: Reject chat requests that carry no API key (401), as the real API does.
    require_key = True
    #: When set, chat requests whose key is not in it get the provider's 401 (invalid key).
    accepted_keys: frozenset[str] | None = None

    def __init__(
        self, *, token_count: int = DEFAULT_TOKEN_COUNT, tls: ssl.SSLContext | None = None
    ) -> None:
        self.default: Behaviour = Reply()
        self.token_count = token_count
        self._lock = threading.Lock()
        self._queues: dict[str | None, deque[Behaviour]] = {}
        self._models: dict[str, ModelConfig] = {}
        self._log = RequestLog()
        self._ids = itertools.count(1)
        self._server = BackgroundServer(self._handle, self._bad_http, tls)
        self._scheme = "https" if tls is not None else "http"
        # A Set-Cookie header on every response, as a provider behind a CDN sends one.
        self.set_cookie: str | None = None

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> Self:
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop at once, dropping stalled and unanswered connections."""
        self._server.stop()

    def down(self) -> None:
        """Simulate the process dying: drop connections and refuse new ones."""
        self._server.down()

    def up(self) -> None:
        """Come back on the same port after down()."""
        self._server.up()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised inside the fake's handlers (should stay empty)."""
        return list(self._server.errors)

    @property
    def root_url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self.port}"

    @property
    @abstractmethod
    def base_url(self) -> str:
        """What to pass as api_base / base_url to the provider's clients."""

    # --- scripting ---------------------------------------------------------------

    def script(self, model: str | None, *behaviours: Behaviour) -> None:
        """Queue behaviours for a model's next requests (model=None: any model).

        A request takes the first of: its model's queue, the any-model queue, the
        model's configured default, ``self.default``.
        """
        with self._lock:
            self._queues.setdefault(model, deque()).extend(behaviours)

    def pending(self, model: str | None = None) -> int:
        """How many scripted behaviours are still queued for model (None: any-model queue)."""
        with self._lock:
            return len(self._queues.get(model, ()))

    def configure(
        self,
        model: str,
        *,
        tokens: Sequence[str] | None = None,
        prefill: bool | None = None,
        default: Behaviour | None = None,
        context_window: int | None = None,
        reported: str | None = None,
    ) -> None:
        """Set a model's reply tokens, prefill support, default behaviour, context window,
        or the name its answers report (OpenAI answers `gpt-4o-mini` with a dated snapshot)."""
        with self._lock:
            cfg = self._models.setdefault(model, ModelConfig())
            if tokens is not None:
                cfg.tokens = list(tokens)
            if prefill is not None:
                cfg.prefill = prefill
            if default is not None:
                cfg.default = default
            if context_window is not None:
                cfg.context_window = context_window
            if reported is not None:
                cfg.reported = reported

    def tokens_for(self, model: str) -> list[str]:
        """The reply a model gives by default (before prefill, max_tokens or faults)."""
        with self._lock:
            cfg = self._models.get(model)
            if cfg is not None and cfg.tokens is not None:
                return list(cfg.tokens)
        return default_tokens(model, self.token_count)

    def model_ids(self) -> list[str]:
        """Models the listing endpoints report: listed_models plus configured ones."""
        with self._lock:
            configured = list(self._models)
        return list(dict.fromkeys([*self.listed_models, *configured]))

    def reply_text(self, model: str) -> str:
        return "".join(self.tokens_for(model))

    def reset(self) -> None:
        """Forget scripts, model settings, the default behaviour and the log."""
        with self._lock:
            self._queues.clear()
            self._models.clear()
            self.default = Reply()
        self._log.clear()

    def _next_behaviour(self, model: str | None) -> Behaviour:
        with self._lock:
            for key in (model, None):
                queue = self._queues.get(key)
                if queue:
                    return queue.popleft()
            cfg = self._models.get(model) if model is not None else None
            if cfg is not None and cfg.default is not None:
                return cfg.default
            return self.default

    def _config(self, model: str) -> ModelConfig:
        with self._lock:
            cfg = self._models.get(model, ModelConfig())
            return ModelConfig(
                cfg.tokens, cfg.prefill, cfg.default, cfg.context_window, cfg.reported
            )

    # --- log ---------------------------------------------------------------------

    def requests(self, model: str | None = None, path: str | None = None) -> list[RequestRecord]:
        """Logged requests, oldest first, optionally only one model's or path's."""
        return self._log.select(model, path)

    def count(self, model: str | None = None, path: str | None = None) -> int:
        return len(self._log.select(model, path))

    def reset_log(self) -> None:
        self._log.clear()

    def presented_key(self, req: HttpRequest) -> str | None:
        """The API key a request carries (Bearer token, x-api-key or api-key header)."""
        auth = req.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return req.headers.get("x-api-key") or req.headers.get("api-key")

    # --- wire format hooks -----------------------------------------------------------

    @abstractmethod
    def routes(self) -> Mapping[tuple[str, str], Route]:
        """(method, path) -> handler. Chat endpoints map to self.chat."""

    @abstractmethod
    def validate(self, req: HttpRequest, body: Mapping[str, Any]) -> ApiError | None:
        """Reject requests the real API would reject before doing any work."""

    @abstractmethod
    def messages(self, body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """The conversation, for prompt counting and prefill detection."""

    def system_text(self, body: Mapping[str, Any]) -> str:
        return ""

    @abstractmethod
    def max_tokens(self, body: Mapping[str, Any]) -> int | None: ...

    @abstractmethod
    def include_usage(self, body: Mapping[str, Any]) -> bool: ...

    @abstractmethod
    def error_body(self, err: ApiError) -> dict[str, Any]: ...

    @abstractmethod
    def status_error(self, status: Status, model: str | None) -> ApiError: ...

    @abstractmethod
    def context_error(self, limit: int, tokens: int) -> ApiError: ...

    @abstractmethod
    def content_filter_error(self, error_code: str) -> ApiError: ...

    @abstractmethod
    def bad_request(self, message: str) -> ApiError: ...

    @abstractmethod
    def not_found(self, req: HttpRequest) -> ApiError: ...

    def prefill_error(self, prefix: str) -> ApiError | None:
        """Provider-specific objection to a prefill the model otherwise supports."""
        return None

    def id_for(self, seq: int) -> str:
        return f"fake-{seq:06d}"

    def response_headers(self, seq: int) -> dict[str, str]:
        return {}

    def _headers_for(self, seq: int) -> dict[str, str]:
        headers = self.response_headers(seq)
        if self.set_cookie is not None:
            headers["set-cookie"] = self.set_cookie
        return headers

    @abstractmethod
    def completion(self, turn: Turn) -> dict[str, Any]: ...

    @abstractmethod
    def stream_head(self, turn: Turn) -> list[bytes]:
        """Events before the first content token."""

    @abstractmethod
    def stream_token(self, turn: Turn, text: str) -> bytes: ...

    @abstractmethod
    def stream_fragment(self, turn: Turn, fragment: Fragment) -> list[bytes]:
        """Events for one piece of a tool call's arguments (its first opens the call)."""

    @abstractmethod
    def stream_tail(self, turn: Turn, sent: int) -> list[bytes]:
        """Events after the last token: finish reason and usage, not the terminator."""

    @abstractmethod
    def stream_done(self, turn: Turn) -> bytes:
        """The end-of-stream marker ([DONE] or message_stop)."""

    @abstractmethod
    def stream_malformed(self, turn: Turn) -> bytes: ...

    @abstractmethod
    def stream_error(self, turn: Turn) -> bytes: ...

    # --- request handling ----------------------------------------------------------

    async def _handle(self, req: HttpRequest, conn: Connection) -> None:
        headers, last4 = mask_headers(req.headers)
        record = RequestRecord(
            time.monotonic(), req.method, req.path, headers, last4, connection=conn.id
        )
        route = self.routes().get((req.method, req.path))
        if route is None:
            record.outcome = "not_found"
            self._log.append(record)
            await self._send_error(conn, record, self.not_found(req))
            return
        await route(req, conn, record)

    async def _bad_http(self, conn: Connection, reason: str) -> None:
        record = RequestRecord(
            time.monotonic(), "?", "?", {}, None, connection=conn.id, outcome="bad_http"
        )
        record.extra["reason"] = reason
        self._log.append(record)
        await self._send_error(conn, record, self.bad_request(reason))
        await conn.close()

    async def send_json(
        self, conn: Connection, record: RequestRecord, payload: Any, status: int = 200
    ) -> None:
        """For simple GET endpoints: log and answer with JSON."""
        self._log.append(record)
        await conn.send(status, {"Content-Type": "application/json"}, dumps(payload))
        record.completed = True

    async def _send_error(
        self, conn: Connection, record: RequestRecord, err: ApiError, seq: int = 0
    ) -> None:
        headers = {
            "Content-Type": "application/json",
            **self._headers_for(seq),
            **err.headers,
        }
        await conn.send(err.status, headers, dumps(self.error_body(err)))
        record.completed = True

    async def chat(self, req: HttpRequest, conn: Connection, record: RequestRecord) -> None:
        """The chat/messages endpoint: validate, pick a behaviour, act it out."""
        seq = next(self._ids)
        try:
            body = json.loads(req.body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            record.outcome = "bad_json"
            self._log.append(record)
            err = self.bad_request("We could not parse the JSON body of your request.")
            await self._send_error(conn, record, err, seq)
            return
        model = body.get("model") if isinstance(body.get("model"), str) else None
        record.body, record.model, record.stream = body, model, body.get("stream") is True
        msgs = self.messages(body)
        if msgs and msgs[-1].get("role") == "assistant":
            record.prefill = content_text(msgs[-1].get("content"))

        problem = self.validate(req, body)
        keys = self.accepted_keys
        if problem is None and keys is not None and self.presented_key(req) not in keys:
            problem = self.status_error(Status(401), model)
        if problem is not None:
            record.outcome = f"rejected:{problem.status}"
            self._log.append(record)
            await self._send_error(conn, record, problem, seq)
            return

        assert model is not None  # validate() insists on one
        # Echo mode (tests/fakes/echo.py): placeholders take what this request carried.
        fill = filler(req.headers, self.presented_key(req))
        behaviour = echoed(self._next_behaviour(model), fill)
        record.outcome = outcome_label(behaviour)
        action = self._plan(behaviour, body, model, record, seq)
        self._log.append(record)
        await self._act(action, conn, record, seq)

    def _plan(
        self,
        behaviour: Behaviour,
        body: Mapping[str, Any],
        model: str,
        record: RequestRecord,
        seq: int,
    ) -> tuple[Behaviour | ApiError, Turn | None]:
        """Turn a behaviour into an error to send, or a Reply plus the answer to stream."""
        match behaviour:
            case Status():
                return behaviour, None  # rendered later, after its delay
            case ContextLength(limit=limit, tokens=used):
                return self.context_error(limit, used), None
            case ContentFilter(after=None, error_code=code):
                return self.content_filter_error(code), None
            case ContentFilter(after=after):
                reply: Behaviour = Reply()
                cut_to: int | None = after
            case Reply():
                reply, cut_to = behaviour, None
            case _:
                return behaviour, None

        cfg = self._config(model)
        prompt_tokens = self._prompt_tokens(body)
        record.extra["prompt_tokens"] = prompt_tokens  # what the provider bills for input
        if record.prefill is not None:
            if not cfg.prefill:
                record.outcome = "prefill_refused"
                return self.bad_request("assistant prefill not supported"), None
            prefill_problem = self.prefill_error(record.prefill)
            if prefill_problem is not None:
                record.outcome = "prefill_rejected"
                return prefill_problem, None
        if cfg.context_window is not None and prompt_tokens > cfg.context_window:
            record.outcome = "context_length"
            return self.context_error(cfg.context_window, prompt_tokens), None

        assert isinstance(reply, Reply)
        tokens = list(reply.tokens) if reply.tokens is not None else self.tokens_for(model)
        if record.prefill is not None:
            rest = continuation(tokens, record.prefill)
            if rest is not None:
                tokens = rest
        finish = "stop"
        max_out = self.max_tokens(body)
        if max_out is not None and len(tokens) > max_out:
            tokens, finish = tokens[:max_out], "length"
        if cut_to is not None:
            tokens, finish = tokens[:cut_to], "content_filter"
        calls = [
            CalledTool(i, call.id or f"call_{seq}_{i}", call.name, call.arguments,
                       tuple(call.pieces()))
            for i, call in enumerate(reply.tool_calls)
        ]  # fmt: skip
        if calls and finish == "stop":
            finish = "tool_calls"
        turn = Turn(
            id=self.id_for(seq),
            created=int(time.time()),
            model=model,
            prompt_tokens=prompt_tokens,
            tokens=tokens,
            finish_reason=reply.finish_reason or self.finish_reasons.get(finish, finish),
            include_usage=self.include_usage(body),
            body=body,
            cached_tokens=reply.cached_tokens,
            reasoning_tokens=reply.reasoning_tokens,
            tool_calls=calls,
            reasoning=list(reply.reasoning),
            reported_model=cfg.reported,
        )
        return reply, turn

    def _prompt_tokens(self, body: Mapping[str, Any]) -> int:
        # A word of ASCII is one token; other text one per character, as real tokenizers
        # count Chinese or Japanese (which a 4-characters-per-token guess undercounts).
        texts = [self.system_text(body)]
        texts += [content_text(msg.get("content")) for msg in self.messages(body)]
        words = [w for text in texts for w in text.split()]
        return max(sum(1 if w.isascii() else len(w) for w in words), 1)

    async def _act(
        self,
        action: tuple[Behaviour | ApiError, Turn | None],
        conn: Connection,
        record: RequestRecord,
        seq: int,
    ) -> None:
        what, turn = action
        match what:
            case ApiError():
                await self._send_error(conn, record, what, seq)
            case Status(delay=delay):
                await asyncio.sleep(delay)
                err = self.status_error(what, record.model)
                await self._send_error(conn, record, err, seq)
            case Reset(delay=delay):
                await asyncio.sleep(delay)
                conn.abort(rst=True)
            case Hang():
                await conn.wait_peer_gone()
            case Garbage(data=data):
                conn.writer.write(data)
                await conn.close()
            case Reply() if turn is not None:
                if record.stream:
                    await self._stream(what, turn, conn, record, seq)
                else:
                    await self._whole(what, turn, conn, record, seq)
            case _:
                raise AssertionError(f"unplannable behaviour {what!r}")

    async def _whole(
        self, reply: Reply, turn: Turn, conn: Connection, record: RequestRecord, seq: int
    ) -> None:
        delay = reply.headers_delay + reply.first_token_delay
        delay += reply.token_delay * max(len(turn.tokens) - 1, 0)
        await asyncio.sleep(delay)
        headers = {"Content-Type": "application/json", **self._headers_for(seq)}
        payload = dumps(self.completion(turn))
        if reply.malformed_after is not None:
            payload = b'{"id": "' + turn.id.encode() + b'", not json'
        if reply.cut_after is not None or reply.stall_after is not None:
            await conn.send_head_only(200, headers, len(payload))
            await conn.write(payload[: len(payload) // 2])
            if reply.cut_after is not None:
                conn.abort(rst=reply.rst)
            else:
                await conn.wait_peer_gone()
            return
        await conn.send(200, headers, payload)
        record.tokens_sent = len(turn.tokens)
        record.completed = True

    async def _stream(
        self, reply: Reply, turn: Turn, conn: Connection, record: RequestRecord, seq: int
    ) -> None:
        await asyncio.sleep(reply.headers_delay)
        headers = {
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            **self._headers_for(seq),
        }
        await conn.start_stream(200, headers, chunked=reply.chunked)
        await asyncio.sleep(reply.first_token_delay)
        for event in self.stream_head(turn):
            await conn.write(event)
        # Stream positions: the content tokens, then every tool call's argument fragments.
        positions: list[str | Fragment] = [*turn.tokens, *turn.fragments]
        sent = 0
        for pos in range(len(positions) + 1):
            if pos == reply.cut_after:
                conn.abort(rst=reply.rst)
                return
            if pos == reply.stall_after:
                await conn.wait_peer_gone()
                return
            if pos == reply.error_after:
                await conn.write(self.stream_error(turn))
                await conn.end_stream()
                await conn.close()
                return
            if pos == reply.malformed_after:
                await conn.write(self.stream_malformed(turn))
            if pos == len(positions):
                break
            if pos > 0:
                await asyncio.sleep(reply.token_delay)
            item = positions[pos]
            if isinstance(item, Fragment):
                for event in self.stream_fragment(turn, item):
                    await conn.write(event)
            else:
                await conn.write(self.stream_token(turn, item))
                record.tokens_sent = pos + 1
            sent = pos + 1
        for event in self.stream_tail(turn, sent):
            await conn.write(event)
        if not reply.omit_done:
            await conn.write(self.stream_done(turn))
        await conn.end_stream()
        if not reply.chunked:
            await conn.close()
        record.completed = True
