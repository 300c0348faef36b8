"""HTTP routes served beside the dashboard by `st.App` (and alone by `switchboard api`).

* ``GET  /health``               whether the process can reach its database
* ``POST /v1/chat/completions``  OpenAI chat completions through the gateway
* ``GET  /v1/models``            models the caller can use (``?all=true``: every model)
* ``GET  /v1/models/{id}``       one model, 403 if the caller could not use it
  (both take ``?profile=NAME``: that profile's keys choice decides what is usable)

The wire format lives in core/openai_request.py (in) and core/openai_format.py (out,
headers documented there); this module does the HTTP: bearer auth, body limits, errors
as OpenAI-shaped JSON, and the SSE stream.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import traceback
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from core import db, errors, heap, keys, openai_request, routes
from core import openai_format as fmt
from core.chat import Caller, Done, RequestIds, StreamEvent, Summary, TextDelta
from core.clock import Clock, utc_now
from core.config import Settings, load_settings
from core.errors import SwitchboardError
from core.gateway import Gateway
from core.run import not_allowed
from core.runtime import Runtime, build_runtime
from core.secrets import redact
from core.targets import KEYLESS_PROVIDERS
from core.tcp_cork import CorkedResponses
from core.tokens import authenticate_token, hash_token
from core.ttlcache import TtlCache

log = logging.getLogger("switchboard.api")

# no-cache and no proxy buffering: each chunk must reach the client as it is produced.
SSE_HEADERS = MappingProxyType({"cache-control": "no-cache", "x-accel-buffering": "no"})


class BodyTooLarge(errors.InvalidInput):
    http_status = 413
    code = "request_too_large"


# How long a checked token is trusted without a query. Revocation, like every policy
# change, reaches each replica within this long.
CALLER_TTL_S = 2.0


@dataclass
class ApiContext:
    """Per-process API resources, built on first use so importing never touches the DB."""

    settings: Settings
    runtime_factory: Callable[[Settings], Runtime] = build_runtime
    clock: Clock = utc_now
    # Where env-var provider keys are looked up for /v1/models; the gateway uses the
    # process environment too, so both agree on which providers have a key.
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    # Servers set this: once the runtime exists, exempt the start-up heap from full GC
    # passes (core/heap.py). Tests leave it off; they build many runtimes per process.
    freeze_heap: bool = False
    # Token hash -> caller, for CALLER_TTL_S; the same bound as the gateway's policy cache.
    callers: TtlCache[Caller] = field(
        default_factory=lambda: TtlCache(CALLER_TTL_S), init=False, repr=False
    )
    ids: RequestIds = field(default_factory=RequestIds, init=False, repr=False)
    _runtime: Runtime | None = field(default=None, init=False, repr=False)
    _engine: Engine | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def runtime(self) -> Runtime:
        if self._runtime is None:
            with self._lock:  # two first requests at once must not build two gateways
                if self._runtime is None:
                    self._runtime = self.runtime_factory(self.settings)
                    if self.freeze_heap:
                        heap.freeze_startup_heap()
        return self._runtime

    async def runtime_async(self) -> Runtime:
        if self._runtime is not None:
            return self._runtime
        # Building runs migrations and loads the catalog: keep it off the event loop,
        # which the dashboard shares when served by streamlit.
        return await asyncio.to_thread(self.runtime)

    def engine(self) -> Engine:
        if self._runtime is not None:
            return self._runtime.engine
        if self._engine is None:  # /health must not run migrations or build a gateway
            self._engine = db.make_engine(self.settings.database_url)
        return self._engine

    def close(self) -> None:
        """Flush the ledger and release connections; safe to call more than once."""
        with self._lock:
            runtime, self._runtime = self._runtime, None
            engine, self._engine = self._engine, None
        if runtime is not None:
            runtime.close()
        if engine is not None:
            engine.dispose()

    @asynccontextmanager
    async def lifespan(self, app: object) -> AsyncIterator[None]:
        """Starlette / st.App lifespan: on shutdown, write every queued ledger row."""
        try:
            yield None
        finally:
            runtime = self._runtime
            if runtime is not None:
                await runtime.gateway.aclose()  # on this loop, where its clients live
            await asyncio.to_thread(self.close)


# --- errors ---------------------------------------------------------------------------


def error_response(
    exc: SwitchboardError, request_id: str, summary: Summary | None = None
) -> JSONResponse:
    headers = fmt.summary_headers(summary) if summary else {}
    headers["x-switchboard-request-id"] = request_id
    if isinstance(exc, errors.RateLimited | errors.LoginLocked):
        headers["retry-after"] = str(max(1, exc.retry_after_s))
    return JSONResponse(fmt.error_from(exc), status_code=exc.http_status, headers=headers)


def unexpected(exc: BaseException, request_id: str, where: str, token: str) -> dict[str, Any]:
    """Log an unexpected failure, redacted, and return a body that reveals nothing of it."""
    detail = redact("".join(traceback.format_exception(exc)), [token])
    log.error("unexpected error in %s (request %s):\n%s", where, request_id, detail)
    return fmt.error_body(
        f"Internal error. Quote request id {request_id} to an admin, who can find the "
        "details in the server log.",
        "server_error",
        "internal_error",
    )


# --- request plumbing -----------------------------------------------------------------


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.AuthenticationFailed(
            "Missing gateway token. Send `Authorization: Bearer sb-...`; create a token with "
            "`switchboard token create USERNAME`."
        )
    return token.strip()


async def authenticate(ctx: ApiContext, runtime: Runtime, token: str) -> Caller:
    """The token's caller; a success is reused for a moment, so a busy client costs no query.

    Only successes are cached (a new token works at once), keyed by the token's hash;
    a revoked token or deactivated user stops working within ``CALLER_TTL_S``.
    """
    key = hash_token(token)
    _, caller = ctx.callers.peek(key)
    if caller is not None:
        return caller

    def check() -> Caller:
        with runtime.sessions.begin() as session:
            return authenticate_token(session, token, ctx.clock())

    # A failed check raises, so it is not cached; concurrent misses share one query.
    return await asyncio.to_thread(ctx.callers.get_or_load, key, check)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing one over ``limit`` bytes by its Content-Length or as it streams."""
    too_large = BodyTooLarge(
        f"The request body is larger than the {limit}-byte limit. Send fewer or shorter "
        "messages (an admin can raise SWITCHBOARD_API_MAX_BODY_BYTES)."
    )
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise errors.InvalidInput("The Content-Length header is not a number.")
        if int(declared) > limit:
            raise too_large
    chunks: list[bytes] = []
    size = 0
    async for piece in request.stream():  # a client can lie in Content-Length or omit it
        size += len(piece)
        if size > limit:
            raise too_large
        chunks.append(piece)
    return b"".join(chunks)


# --- chat completions -----------------------------------------------------------------


async def _aclose(events: AsyncGenerator[StreamEvent, None]) -> None:
    # Closing the gateway's stream makes it record the request as stopped and release
    # its upstream call.
    await events.aclose()


async def complete(gateway: Gateway, call: openai_request.ChatCall, created: int) -> Response:
    parts: list[str] = []
    summary: Summary | None = None
    async for event in gateway.stream(call.request):
        if isinstance(event, TextDelta):
            parts.append(event.text)
        else:
            summary = event.summary
    if summary is None:
        raise RuntimeError("the gateway ended a request without a summary")
    if summary.error is not None:
        return error_response(summary.error, summary.request_id, summary)
    body = fmt.completion_body("".join(parts), summary, created)
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
    """The model a stream starts with: the first text's, or the one that answered nothing."""
    if isinstance(first, TextDelta):
        return first.serving.model if first.serving else requested
    return first.summary.model or requested


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
        while isinstance(event, TextDelta):
            if event.serving is not None:  # a continuation: the next model writes on
                model = event.serving.model
            yield fmt.sse(fmt.chunk(chunk_id, created, model, {"content": event.text}, None))
            event = await anext(events)
        summary = event.summary
        info = fmt.switchboard_info(summary)
        if summary.error is not None:
            # Cut after text and not completed: an error event and no [DONE], so a client
            # cannot mistake the partial text for a whole answer (the SDK raises APIError).
            yield fmt.sse({**fmt.error_from(summary.error), "x_switchboard": info})
            return
        finish = summary.finish_reason or "stop"
        last = fmt.chunk(chunk_id, created, summary.model or model, {}, finish)
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


@dataclass(frozen=True)
class Authed:
    """An authenticated API request: who is calling, through which runtime."""

    runtime: Runtime
    caller: Caller
    token: str
    request_id: str  # also the ledger's id for this request


Handler = Callable[[ApiContext, Request, Authed], Awaitable[Response]]


def endpoint(ctx: ApiContext, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Bearer auth around ``handler``; every failure becomes an OpenAI-shaped error."""

    async def route(request: Request) -> Response:
        request_id = ctx.ids.new()
        token = ""
        try:
            token = bearer_token(request)
            runtime = await ctx.runtime_async()
            caller = await authenticate(ctx, runtime, token)
            return await handler(ctx, request, Authed(runtime, caller, token, request_id))
        except SwitchboardError as exc:
            return error_response(exc, request_id)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening; just end the exchange
        except Exception as exc:
            body = unexpected(exc, request_id, request.url.path, token)
            headers = {"x-switchboard-request-id": request_id}
            return JSONResponse(body, status_code=500, headers=headers)

    return route


async def chat_completions(ctx: ApiContext, request: Request, auth: Authed) -> Response:
    raw = await read_body(request, ctx.settings.api_max_body_bytes)
    call = openai_request.parse_chat(openai_request.parse_json(raw), auth.caller, auth.request_id)
    created = int(ctx.clock().timestamp())
    gateway = auth.runtime.gateway
    if call.request.stream:
        return await stream(gateway, call, auth.request_id, created, auth.token)
    return await complete(gateway, call, created)


# --- models ---------------------------------------------------------------------------


def _model(model_id: str, provider: str, **extra: Any) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": provider, **extra}


def _usable_providers(
    runtime: Runtime, caller: Caller, environ: Mapping[str, str], profile: str | None
) -> tuple[set[str], str | None]:
    """Providers with a key this caller may use under ``profile`` (or needing none)."""
    with runtime.sessions() as session:
        found = routes.find_caller_profile(session, caller, profile)
        status = keys.key_status(session, caller, runtime.catalog.providers(), environ,
                                 routes.profile_key_sources(found))
    usable = {s.provider for s in status if s.source is not None} | KEYLESS_PROVIDERS
    return usable, found.name if found else None


def list_models(
    runtime: Runtime, caller: Caller, environ: Mapping[str, str], show_all: bool,
    profile: str | None = None,
) -> list[dict[str, Any]]:
    """Catalog models whose provider has a key for ``caller`` (or needs none), then endpoints."""
    usable, _ = _usable_providers(runtime, caller, environ, profile)
    rows = []
    for info in runtime.catalog.models():
        ok = info.provider in usable
        if ok or show_all:
            rows.append(_model(info.id, info.provider, **({"available": ok} if show_all else {})))
    # The gateway's own view of the endpoints, so /v1/models lists what it will accept.
    for model_id in runtime.gateway.resolver().endpoint_models():
        # Endpoint models need no key: the gateway sends a placeholder when none is stored.
        extra = {"available": True} if show_all else {}
        rows.append(_model(model_id, model_id.partition("/")[0], **extra))
    return rows


def find_model(
    runtime: Runtime, caller: Caller, environ: Mapping[str, str], model_id: str,
    profile: str | None = None,
) -> dict[str, Any]:
    """One model, as /v1/models lists it; 404 if unknown, 403 if the caller has no key."""
    target = runtime.gateway.resolver().resolve(model_id)  # NotFound if unknown
    if target.key_required:
        usable, profile_name = _usable_providers(runtime, caller, environ, profile)
        if target.provider not in usable:
            raise not_allowed(target, profile_name)  # as a chat request for it would be
    return _model(target.model_id, target.provider)


async def models(ctx: ApiContext, request: Request, auth: Authed) -> Response:
    model_id = request.path_params.get("model_id")
    profile = request.query_params.get("profile") or None
    if model_id:
        return JSONResponse(await asyncio.to_thread(
            find_model, auth.runtime, auth.caller, ctx.environ, model_id, profile))
    show_all = request.query_params.get("all", "").lower() in ("1", "true", "yes")
    data = await asyncio.to_thread(
        list_models, auth.runtime, auth.caller, ctx.environ, show_all, profile)
    return JSONResponse({"object": "list", "data": data})


# --- health and wiring ----------------------------------------------------------------


async def health(ctx: ApiContext, request: Request) -> JSONResponse:
    try:
        engine = ctx.engine()
        await asyncio.to_thread(db.check_connection, engine)
        revision = await asyncio.to_thread(db.current_revision, engine)
    except SwitchboardError as exc:
        return JSONResponse({"status": "error", "database": exc.message}, status_code=503)
    ok = revision == db.head_revision()
    body = {"status": "ok" if ok else "degraded", "database": "ok", "schema": revision}
    if not ok:
        body["hint"] = "The schema is behind; run `switchboard init`."
    return JSONResponse(body, status_code=200 if ok else 503)


def api_routes(ctx: ApiContext | None = None) -> list[BaseRoute]:
    context = ctx or ApiContext(load_settings())

    async def health_route(request: Request) -> Response:
        return await health(context, request)

    return [
        Route("/health", health_route, methods=["GET"]),
        Route("/v1/chat/completions", endpoint(context, chat_completions), methods=["POST"]),
        Route("/v1/models", endpoint(context, models), methods=["GET"]),
        Route("/v1/models/{model_id:path}", endpoint(context, models), methods=["GET"]),
    ]


def build_app(ctx: ApiContext | None = None) -> ASGIApp:
    """The API alone, as `switchboard api` serves it; shutdown flushes the ledger."""
    context = ctx or ApiContext(load_settings())
    return CorkedResponses(Starlette(routes=api_routes(context), lifespan=context.lifespan))
