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
import email.utils
import re
import ssl
import time
from collections.abc import (
    AsyncGenerator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from core.accounts.secrets import redact
from core.request import Message, Usage
from core.upstream.clients import UpstreamClients
from core.upstream.litellm_calls import CompletionFn, default_completion, openai_via_sdk

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


def _usage(obj: Any) -> Usage | None:
    usage = getattr(obj, "usage", None)
    if usage is None:
        return None
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    return Usage(
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        cached_tokens=int(getattr(prompt_details, "cached_tokens", 0) or 0),
        reasoning_tokens=int(getattr(completion_details, "reasoning_tokens", 0) or 0),
    )


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
    ) -> Piece:
        """A non-streaming call bounded by the request's deadline: the whole answer as a piece.

        ``deadline`` is a time.monotonic() value for the whole request, retries included.
        """
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
        return Piece(
            text=getattr(message, "content", None) or "",
            finish_reason=getattr(choice, "finish_reason", None),
            usage=_usage(response),
            reasoning=getattr(message, "reasoning_content", None) or "",
            tool_calls=calls,
            model=getattr(response, "model", None),
            thinking_blocks=_blocks(message),
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
    ) -> AsyncGenerator[Piece, None]:
        """Yield pieces; raise UpstreamError on any failure, including a silent truncation.

        ``deadline`` is a time.monotonic() value for the whole request.
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
            reported = _ReportedModel.watch(response)
            iterator = response.__aiter__()
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
                piece = _piece(chunk, reported)
                if piece.output:
                    got_text = True
                if piece.finish_reason:
                    upstream_finish = piece.finish_reason
                yield piece
            if _truncated(response, upstream_finish):
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
    return Piece(text, finish, _usage(chunk), reasoning, calls, model, blocks)


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
                    await asyncio.wait_for(result, 1.0)
            except Exception:
                pass
            break
