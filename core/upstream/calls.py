"""One call to one upstream model through litellm, with our own timeouts and error kinds.

Only this module touches litellm's responses and exceptions (core/upstream/litellm_calls.py
sets litellm up; core/upstream/clients.py makes its HTTP clients). It classifies every
failure into a small set of kinds the gateway decides on, and it never lets
litellm pass off a truncated stream as complete: litellm ends a cut stream with a
synthetic ``finish_reason="stop"``, so completion is judged from whether the
upstream itself sent a finish reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import json
import re
import ssl
import time
from collections.abc import (
    AsyncGenerator,
    Mapping,
    Sequence,
)
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import httpx

from core.accounts.secrets import redact
from core.request import Message, Usage
from core.upstream.clients import UpstreamClients
from core.upstream.litellm_calls import CompletionFn, default_completion, openai_via_sdk
from core.upstream.usage import provider_reported, read_usage

# Failure kinds the gateway acts on.
TRANSIENT = "transient"  # retry the same model, then fail over
TIMEOUT = "timeout"  # fail over, never retry the same model
AUTH = "auth"  # fail over and mark the key as failing
REJECTED = "rejected"  # a 4xx from the provider other than 401/403/408/429: fail over
INVALID = "invalid"  # the request itself is wrong, found before it left: end the request
CONTEXT = "context"  # prompt too long for this model: skip to one that fits
CONTENT = "content"  # provider refused on content policy
CUT = "cut"  # the stream broke or ended without finishing
UNTRUSTED = "untrusted"  # TLS certificate not trusted: fail over, never retry

# The provider's own failures: the only kinds its circuit breaker counts. A rejection of
# the request's content (REJECTED, CONTEXT, CONTENT, INVALID) says nothing about the
# deployment, and neither does the caller's stop (never an UpstreamError at all).
PROVIDER_FAILURES = frozenset({TRANSIENT, TIMEOUT, AUTH, CUT, UNTRUSTED})

# Exceptions from these modules mean bytes went over a network: the provider was reached
# or the connection to it failed.
_NETWORK_MODULES = ("httpx", "httpcore", "aiohttp", "ssl", "h11", "anyio")
_SDK_MODULES = ("openai", "anthropic")
_LITELLM_ADVICE = re.compile(
    r"\s*(To drop (?:these|unsupported)|Received Messages=|Traceback \(most).*", re.S
)
_LITELLM_PREFIX = re.compile(r"^(?:litellm\.\w+:\s*|\w+Error:\s*|\w+Exception\s*-\s*)+")


@dataclass(frozen=True)
class Timeouts:
    connect_s: float = 5.0
    first_token_s: float = 10.0
    idle_s: float = 10.0
    total_s: float = 300.0


class UpstreamError(Exception):
    """A classified upstream failure. ``message`` is redacted by the gateway before storing."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
        error_class: str = "",
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after_s = retry_after_s
        self.error_class = error_class or kind
        # Text a whole-answer call had received before it failed: billed as an estimate.
        self.partial_text = ""


@dataclass(frozen=True)
class ToolCallDelta:
    """A fragment of a tool call as the provider streams it: the first of a call names it
    (``id``, ``name``), the rest carry only more ``arguments`` text for its ``index``."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True)
class Piece:
    """What one upstream chunk adds to the answer (a whole answer is one big piece)."""

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    reasoning: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    model: str | None = None  # the model name the provider reported
    # Anthropic's signed thinking blocks (litellm's thinking_blocks), in pieces when
    # streamed: a caller must hand them back with a tool-calling turn.
    thinking_blocks: tuple[Mapping[str, Any], ...] = ()
    # A whole answer's: when its first output came (time.monotonic()), for its ttft.
    first_token_at: float | None = None

    @property
    def output(self) -> bool:
        """True when the piece carries anything of the answer: the first-token timer stops."""
        return bool(self.text or self.reasoning or self.tool_calls)


def counts_against_provider(error: UpstreamError) -> bool:
    """Whether this failure is the deployment's own, for its circuit breaker."""
    return error.kind in PROVIDER_FAILURES


def classify(
    exc: BaseException, secrets: Sequence[str] = (), *, streaming: bool = False
) -> UpstreamError:
    """Map litellm's (or any OpenAI-style) exception to a kind, by class name and status.

    ``streaming``: the provider's response had begun, so nothing can have been raised
    before the request left. The message is redacted here, where the key is known: a
    provider may echo the key back, and everything downstream (errors, ledger, API
    bodies) takes this text.
    """
    if isinstance(exc, UpstreamError):
        return exc
    name = type(exc).__name__
    names = {c.__name__ for c in type(exc).__mro__}
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None
    text = redact(str(getattr(exc, "message", "") or exc) or name, secrets)
    retry_after = _retry_after(exc)
    if _certificate_refused(exc):
        # A retry cannot fix trust; the next model may be elsewhere. litellm reports it
        # as a 500, so only the cause chain tells it from a relay's own error text.
        return UpstreamError(
            UNTRUSTED,
            f"{text} The provider's TLS certificate is not trusted; if it is your proxy's, "
            "point SSL_CERT_FILE at your CA bundle.",
            error_class="CertificateVerifyFailed",
        )
    if "ContextWindowExceededError" in names or "context_length_exceeded" in text:
        kind = CONTEXT
    elif "ContentPolicyViolationError" in names or any(
        marker in text for marker in ("content_filter", "content_policy", "content management")
    ):
        kind = CONTENT
    elif not streaming and _raised_locally(exc):
        return UpstreamError(INVALID, _invalid_message(exc, text), status=400, error_class=name)
    elif "Timeout" in names and getattr(exc, "litellm_response_headers", None) is not None:
        kind = TRANSIENT  # the upstream answered 408/504; litellm files those under Timeout
    elif "Timeout" in names or isinstance(exc, (asyncio.TimeoutError, httpx.TimeoutException)):
        kind = TIMEOUT
    elif status in (401, 403):
        kind = AUTH
    elif (
        status is not None
        and 400 <= status < 500
        and status not in (408, 429)
        and "APIConnectionError" not in names
    ):
        kind = REJECTED
    else:
        # Connection errors, 408/429/5xx/529 and anything unrecognised: worth a retry.
        kind = TRANSIENT
    return UpstreamError(kind, text, status=status, retry_after_s=retry_after, error_class=name)


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and everything it was raised from or during, outermost first."""
    seen: set[int] = set()
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _module(exc: BaseException) -> str:
    return type(exc).__module__.partition(".")[0]


def _raised_locally(exc: BaseException) -> bool:
    """True when the failure came from building the request, before a byte left.

    litellm translates the request for the provider before sending it, and a request it
    cannot translate (an unsupported parameter, a content part missing its field) fails
    there, dressed as a 400 or even as a connection error. Such a failure has no network
    exception and no provider's HTTP answer anywhere in its chain, and it began as a plain
    Python error (or litellm's own 400), not as one of litellm's provider error classes.
    """
    chain = _causes(exc)
    if any(type(c).__name__ == "UnsupportedParamsError" for c in chain):
        return True
    if getattr(exc, "litellm_response_headers", None) is not None:
        return False  # the provider answered
    for link in chain:
        if isinstance(link, OSError) or _module(link) in _NETWORK_MODULES:
            return False
        if _module(link) in _SDK_MODULES:
            return False  # the provider SDK's own error: it talked to the network
    root = chain[-1]
    if _module(root) != "litellm":
        return True  # KeyError, IndexError, a bare Exception from litellm's translation
    return getattr(root, "status_code", None) == 400


def _invalid_message(exc: BaseException, text: str) -> str:
    """litellm's complaint, minus its class names, its drop_params advice and its echo of
    the messages (which may be long, and are the caller's own content)."""
    root = _causes(exc)[-1]
    if isinstance(root, KeyError) and root.args:
        return f"a part of the request is missing its {root.args[0]!r} field"
    detail = _LITELLM_PREFIX.sub("", _LITELLM_ADVICE.sub("", text)).strip()
    detail = detail[:400].rstrip(". ") or type(root).__name__
    if any(type(c).__name__ == "UnsupportedParamsError" for c in _causes(exc)):
        return f"{detail}. Leave those parameters out, or ask for a model that takes them"
    return detail


def _certificate_refused(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _retry_after(exc: BaseException) -> float | None:
    headers: Mapping[str, str] | None = None
    response = getattr(exc, "response", None)
    if response is not None and hasattr(response, "headers"):
        headers = response.headers
    headers = headers or getattr(exc, "litellm_response_headers", None)
    raw = headers.get("retry-after") if headers else None
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None  # unreadable: the normal backoff applies
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # HTTP dates are GMT even when they omit it
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class Upstream:
    """Calls a model through an injected completion function (litellm.acompletion by default)."""

    def __init__(self, completion: CompletionFn | None = None) -> None:
        self._completion = completion
        # Our own clients only under real litellm; an injected function gets plain kwargs.
        self._clients = UpstreamClients() if completion is None else None
        self._openai_sdk: bool | None = None  # litellm's OpenAI path, read at the first call

    async def aclose(self) -> None:
        """Close the HTTP clients this loop made; call before the loop ends."""
        if self._clients is not None:
            await self._clients.aclose_current_loop()

    def load(self) -> None:
        """Import litellm now if not yet (~3 s once per process), before any timer starts."""
        _ = self.completion

    @property
    def completion(self) -> CompletionFn:
        if self._completion is None:
            self._completion = default_completion()
        return self._completion

    def _kwargs(
        self,
        litellm_model: str,
        messages: Sequence[Message],
        api_key: str | None,
        api_base: str | None,
        params: Mapping[str, Any],
        timeouts: Timeouts,
        stream: bool,
    ) -> dict[str, Any]:
        # A little past our own timers, so ours fire first and name what happened.
        read = (timeouts.idle_s if stream else timeouts.total_s) + 1.0
        kwargs: dict[str, Any] = {
            "model": litellm_model,
            "messages": list(messages),
            "stream": stream,
            "timeout": httpx.Timeout(read, connect=timeouts.connect_s),
            "max_retries": 0,  # retries are ours, with backoff and a budget
            "num_retries": 0,
            **params,
        }
        if stream:
            kwargs["stream_options"] = {"include_usage": True}
        if api_key is not None:
            kwargs["api_key"] = api_key
        if api_base is not None:
            kwargs["api_base"] = api_base
        if self._clients is not None:
            if self._openai_sdk is None:
                self._openai_sdk = openai_via_sdk()
            client = self._clients.client_for(
                litellm_model, api_key, api_base, openai_sdk=self._openai_sdk, stream=stream
            )
            if client is not None:
                kwargs["client"] = client
        return kwargs

    async def complete(
        self,
        litellm_model: str,
        messages: Sequence[Message],
        *,
        api_key: str | None,
        api_base: str | None,
        params: Mapping[str, Any],
        timeouts: Timeouts,
        deadline: float,
        streaming: bool = True,
    ) -> Piece:
        """The whole answer as one piece, under the same timers as a stream.

        Where the model streams (``streaming``), the call is streamed and its pieces
        joined: a hung provider fails within the first-token timeout and a stalled one
        within the idle timeout, not the total one. Nothing reaches the caller until it
        is whole, so a failure stays invisible to them; the text received before it is
        kept on the error (``partial_text``) for billing. ``deadline`` is a
        time.monotonic() value for the whole request, retries included.
        """
        if not streaming:
            return await self._whole(
                litellm_model,
                messages,
                api_key=api_key,
                api_base=api_base,
                params=params,
                timeouts=timeouts,
                deadline=deadline,
            )
        pieces: list[Piece] = []
        first_at: float | None = None
        stream = self.stream(
            litellm_model,
            messages,
            api_key=api_key,
            api_base=api_base,
            params=params,
            timeouts=timeouts,
            deadline=deadline,
            whole=True,
        )
        try:
            async with aclosing(stream) as chunks:
                async for piece in chunks:
                    if first_at is None and (piece.output or piece.thinking_blocks):
                        first_at = time.monotonic()
                    pieces.append(piece)
        except UpstreamError as exc:
            if exc.kind == CUT and first_at is None:
                # Dropped before any output (a reset, say): as a whole call would have
                # failed to connect, worth a retry on the same model.
                exc.kind = TRANSIENT
            exc.partial_text = "".join(p.text for p in pieces)
            raise
        return _joined(pieces, first_at)

    async def _whole(
        self,
        litellm_model: str,
        messages: Sequence[Message],
        *,
        api_key: str | None,
        api_base: str | None,
        params: Mapping[str, Any],
        timeouts: Timeouts,
        deadline: float,
    ) -> Piece:
        """A non-streaming call (models that cannot stream): only the total timeout applies."""
        call = self.completion  # import litellm (first call only) before any timer runs
        kwargs = self._kwargs(
            litellm_model, messages, api_key, api_base, params, timeouts, stream=False
        )
        try:
            # asyncio.timeout, not wait_for: wait_for wraps each await in a new Task.
            async with asyncio.timeout(_left(deadline)):
                response = await call(**kwargs)
        except TimeoutError:
            raise UpstreamError(
                TIMEOUT, f"no response within {timeouts.total_s:g}s", error_class="TotalTimeout"
            ) from None
        except Exception as exc:
            raise classify(exc, _secrets(api_key)) from None
        choice = response.choices[0]
        message = choice.message
        # Anthropic numbers calls by content block (text first): renumber them from 0.
        calls = tuple(
            ToolCallDelta(i, call.id, call.function.name, call.function.arguments or "")
            for i, call in enumerate(getattr(message, "tool_calls", None) or ())
        )
        usage = read_usage(response, messages, params)
        if usage is not None and not usage.total_tokens:
            usage = None  # no usage in the answer (litellm leaves zeros): the chain estimates
        return Piece(
            text=getattr(message, "content", None) or "",
            finish_reason=getattr(choice, "finish_reason", None),
            usage=usage,
            reasoning=getattr(message, "reasoning_content", None) or "",
            tool_calls=calls,
            model=getattr(response, "model", None),
            thinking_blocks=_blocks(message),
            first_token_at=time.monotonic(),
        )

    async def stream(
        self,
        litellm_model: str,
        messages: Sequence[Message],
        *,
        api_key: str | None,
        api_base: str | None,
        params: Mapping[str, Any],
        timeouts: Timeouts,
        deadline: float,
        whole: bool = False,
    ) -> AsyncGenerator[Piece, None]:
        """Yield pieces; raise UpstreamError on any failure, including a silent truncation.

        ``deadline`` is a time.monotonic() value for the whole request. ``whole``: the
        pieces are joined into one answer, nobody reads them as they come, so an OpenAI-wire
        stream is read straight from the provider's parser, past litellm's per-chunk
        wrapper (its CPU made whole answers several times dearer than unstreamed calls).
        """
        call = self.completion  # import litellm (first call only) before any timer runs
        kwargs = self._kwargs(
            litellm_model, messages, api_key, api_base, params, timeouts, stream=True
        )
        started = time.monotonic()
        first_by = min(deadline, started + timeouts.first_token_s)
        response: Any = None
        got_text = False
        try:
            async with asyncio.timeout(_left(first_by)):
                response = await call(**kwargs)
            raw = _wire_lines(response) if whole else None
            reported = None if raw is not None else _ReportedModel.watch(response)
            iterator = raw if raw is not None else response.__aiter__()
            upstream_finish: str | None = None
            while True:
                limit = (
                    first_by if not got_text else min(deadline, time.monotonic() + timeouts.idle_s)
                )
                try:
                    # One timer per chunk, and no Task per chunk as wait_for would make.
                    async with asyncio.timeout(_left(limit)):
                        chunk = await iterator.__anext__()
                except StopAsyncIteration:
                    break
                if raw is not None:
                    wire = _wire_event(chunk, _secrets(api_key))
                    if wire is None:
                        continue  # a blank line, a comment or [DONE]
                    piece = _wire_piece(wire, messages, params)
                else:
                    piece = _piece(chunk, reported)
                    if piece.usage is not None:  # once, at the end: the whole call is known
                        usage = read_usage(
                            chunk, messages, params, reported=provider_reported(response)
                        )
                        piece = dataclasses.replace(piece, usage=usage)
                if piece.output:
                    got_text = True
                if piece.finish_reason:
                    upstream_finish = piece.finish_reason
                yield piece
            if _truncated(None if raw is not None else response, upstream_finish):
                raise UpstreamError(
                    CUT, "the stream ended before the model finished", error_class="StreamCut"
                )
        except TimeoutError:
            now = time.monotonic()
            if now >= deadline - 0.001:
                raise UpstreamError(
                    TIMEOUT,
                    f"request exceeded {timeouts.total_s:g}s in total",
                    error_class="TotalTimeout",
                ) from None
            if not got_text:
                raise UpstreamError(
                    TIMEOUT,
                    f"no first token within {timeouts.first_token_s:g}s",
                    error_class="FirstTokenTimeout",
                ) from None
            raise UpstreamError(
                TIMEOUT, f"the stream stalled for {timeouts.idle_s:g}s", error_class="StreamStalled"
            ) from None
        except UpstreamError:
            raise
        except Exception as exc:
            streaming = response is not None
            raise classify(exc, _secrets(api_key), streaming=streaming) from None
        finally:
            await _close(response)


def _secrets(api_key: str | None) -> tuple[str, ...]:
    return (api_key,) if api_key else ()


def _left(until: float) -> float:
    return max(0.0, until - time.monotonic())


class _ReportedModel:
    """Reads the model name off the provider's own chunks as litellm consumes them.

    litellm rewrites every streamed chunk's ``model`` to the name it was asked for, so
    OpenAI's ``gpt-4o-mini-2024-07-18`` would be lost; the raw chunks still carry it.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.name: str | None = None

    @classmethod
    def watch(cls, response: Any) -> _ReportedModel:
        watcher = cls(getattr(response, "completion_stream", None))
        # Only a live async stream; litellm also keeps strings and whole answers there.
        if hasattr(watcher._inner, "__aiter__"):
            response.completion_stream = watcher._chunks()
        return watcher

    async def _chunks(self) -> AsyncGenerator[Any, None]:
        try:
            async for chunk in self._inner:
                if self.name is None:
                    found = getattr(chunk, "model", None)
                    if isinstance(found, str) and found:
                        self.name = found
                yield chunk
        finally:
            await _close(self._inner)  # closing us closes the provider's stream


def _tool_deltas(delta: Any) -> tuple[ToolCallDelta, ...]:
    raw = getattr(delta, "tool_calls", None)
    if not raw:
        return ()
    out: list[ToolCallDelta] = []
    for position, call in enumerate(raw):
        function = getattr(call, "function", None)
        index = getattr(call, "index", None)
        out.append(
            ToolCallDelta(
                index if isinstance(index, int) else position,
                getattr(call, "id", None) or None,
                getattr(function, "name", None) or None,
                getattr(function, "arguments", None) or "",
            )
        )
    return tuple(out)


def _piece(chunk: Any, reported: _ReportedModel | None = None) -> Piece:
    choices = getattr(chunk, "choices", None) or []
    text = reasoning = ""
    finish = None
    calls: tuple[ToolCallDelta, ...] = ()
    blocks: tuple[Mapping[str, Any], ...] = ()
    if choices:
        delta = getattr(choices[0], "delta", None)
        if delta is not None:
            text = getattr(delta, "content", None) or ""
            reasoning = getattr(delta, "reasoning_content", None) or ""
            calls = _tool_deltas(delta)
            blocks = _blocks(delta)
        finish = getattr(choices[0], "finish_reason", None)
    model = (reported.name if reported else None) or getattr(chunk, "model", None)
    return Piece(text, finish, read_usage(chunk), reasoning, calls, model, blocks)


def _wire_lines(response: Any) -> Any:
    """The SSE lines of an OpenAI-wire stream (OpenAI, xAI, openai-compatible servers), from
    under litellm's parser and stream wrapper, or None for other providers.

    A whole answer needs only each chunk's text, tool calls, finish and usage: read from
    the JSON directly, a call costs about what an unstreamed one does, where litellm's
    pydantic chunks and wrapper cost several times that. Other providers' parsers spread
    usage and finish over several events for the wrapper to combine, so they keep it.
    """
    inner = getattr(response, "completion_stream", None)
    if not type(inner).__module__.startswith("litellm.llms.openai."):
        return None
    start = getattr(getattr(inner, "streaming_response", None), "__aiter__", None)
    return start() if start is not None else None


def _wire_event(line: Any, secrets: Sequence[str]) -> Mapping[str, Any] | None:
    """One ``data:`` line's JSON chunk; None for anything that carries no chunk."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", "replace")
    if not isinstance(line, str):
        return None
    line = line.strip()
    if not line.startswith("data:"):
        return None  # blank, an SSE comment or an event name
    data = line[5:].strip()
    if not data or data == "[DONE]":
        return None
    try:
        event = json.loads(data)
    except ValueError:
        return None  # as litellm's parser: an unreadable line is skipped
    if not isinstance(event, dict):
        return None
    error = event.get("error")
    if error:
        detail = error.get("message") if isinstance(error, dict) else error
        raise UpstreamError(
            CUT,
            redact(f"the provider sent an error mid-stream: {detail}", secrets),
            error_class="StreamError",
        )
    return event


def _ns(value: Any) -> Any:
    """JSON objects as attribute holders, for read_usage (which reads litellm's objects)."""
    if isinstance(value, dict):
        return SimpleNamespace(**{k: _ns(v) for k, v in value.items()})
    return value


def _wire_piece(
    event: Mapping[str, Any], messages: Sequence[Message], params: Mapping[str, Any]
) -> Piece:
    text = reasoning = ""
    finish = None
    calls: tuple[ToolCallDelta, ...] = ()
    choices = event.get("choices") or []
    if choices and isinstance(choices[0], dict):
        delta = choices[0].get("delta") or {}
        text = delta.get("content") or ""
        # DeepSeek and vLLM say reasoning_content, others reasoning (litellm maps both).
        reasoning = delta.get("reasoning_content") or delta.get("reasoning") or ""
        calls = tuple(
            ToolCallDelta(
                c.get("index", position) if isinstance(c.get("index"), int) else position,
                c.get("id") or None,
                (c.get("function") or {}).get("name") or None,
                (c.get("function") or {}).get("arguments") or "",
            )
            for position, c in enumerate(delta.get("tool_calls") or ())
            if isinstance(c, dict)
        )
        finish = choices[0].get("finish_reason") or None
    usage = None
    if isinstance(event.get("usage"), dict):
        usage = read_usage(SimpleNamespace(usage=_ns(event["usage"])), messages, params)
    model = event.get("model") if isinstance(event.get("model"), str) else None
    return Piece(text, finish, usage, str(reasoning), calls, model or None)


def _joined(pieces: Sequence[Piece], first_at: float | None) -> Piece:
    """One answer from a whole stream, as the provider would have sent it unstreamed."""
    calls: dict[int, ToolCallDelta] = {}
    for piece in pieces:
        for d in piece.tool_calls:
            was = calls.get(d.index)
            calls[d.index] = (
                d
                if was is None
                else ToolCallDelta(
                    d.index, was.id or d.id, was.name or d.name, was.arguments + d.arguments
                )
            )
    return Piece(
        text="".join(p.text for p in pieces),
        finish_reason=next((p.finish_reason for p in reversed(pieces) if p.finish_reason), None),
        usage=next((p.usage for p in reversed(pieces) if p.usage is not None), None),
        reasoning="".join(p.reasoning for p in pieces),
        # Anthropic numbers calls by content block (text first): renumber them from 0.
        tool_calls=tuple(
            dataclasses.replace(c, index=i) for i, (_, c) in enumerate(sorted(calls.items()))
        ),
        model=next((p.model for p in pieces if p.model), None),
        thinking_blocks=tuple(b for p in pieces for b in p.thinking_blocks),
        first_token_at=first_at,
    )


def _blocks(holder: Any) -> tuple[Mapping[str, Any], ...]:
    raw = getattr(holder, "thinking_blocks", None)
    return tuple(dict(b) for b in raw if isinstance(b, Mapping)) if raw else ()


def _truncated(response: Any, upstream_finish: str | None) -> bool:
    """True when the upstream never said it finished (litellm's synthetic "stop" aside)."""
    if hasattr(response, "received_finish_reason"):
        received = response.received_finish_reason or getattr(
            response, "intermittent_finish_reason", None
        )
        return received is None
    return upstream_finish is None


async def _close(response: Any) -> None:
    """Release the upstream connection promptly, whatever state the stream is in."""
    if response is None:
        return
    for holder in (response, getattr(response, "completion_stream", None)):
        for name in ("aclose", "close"):
            closer = getattr(holder, name, None)
            if closer is None:
                continue
            try:
                result = closer()
                if asyncio.iscoroutine(result):
                    async with asyncio.timeout(1.0):  # not wait_for: no Task per close
                        await result
            except Exception:
                pass
            break
