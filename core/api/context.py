"""What every /v1 endpoint shares: the per-process context, bearer auth, body limits, and
errors as OpenAI-shaped JSON.

``endpoint`` wraps a handler: it authenticates the caller, hands the handler an ``Authed``
and turns every failure into an error body, so no handler builds one by hand.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from core import errors
from core.accounts.secrets import redact
from core.accounts.token_throttle import TokenThrottle
from core.accounts.tokens import authenticate_token, hash_token
from core.api import heap
from core.api import openai_format as fmt
from core.clock import Clock, utc_now
from core.config import Settings
from core.errors import SwitchboardError
from core.gateway.lazysession import in_thread
from core.gateway.runtime import Runtime, build_runtime
from core.request import Caller, RequestIds, Summary
from core.store import db
from core.store.journal import Backlog
from core.ttlcache import TtlCache

log = logging.getLogger("switchboard.api")


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
    # passes (core/api/heap.py). Tests leave it off; they build many runtimes per process.
    freeze_heap: bool = False
    # Token hash -> caller, for CALLER_TTL_S; the same bound as the gateway's policy cache.
    callers: TtlCache[Caller] = field(
        default_factory=lambda: TtlCache(CALLER_TTL_S), init=False, repr=False
    )
    ids: RequestIds = field(default_factory=RequestIds, init=False, repr=False)
    token_throttle: TokenThrottle = field(init=False, repr=False)
    _runtime: Runtime | None = field(default=None, init=False, repr=False)
    _engine: Engine | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.token_throttle = TokenThrottle(self.settings.api_token_failures_per_minute)

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
        try:
            return await asyncio.to_thread(self.runtime)
        except errors.DatabaseUnavailable as exc:
            # The full reason (which host, what it said) is for the log, not the client.
            log.error("the API cannot open its database: %s", exc.message)
            raise db.unavailable() from None

    def backlog(self) -> Backlog | None:
        """The journal's backlog, once the runtime (and so the journal) exists."""
        return self._runtime.gateway.backlog() if self._runtime is not None else None

    def engine(self) -> Engine:
        if self._runtime is not None:
            return self._runtime.engine
        if self._engine is None:  # /health must not run migrations or build a gateway
            self._engine = db.make_engine(
                self.settings.database_url, **self.settings.engine_options()
            )
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
    if isinstance(exc, errors.RateLimited | errors.LoginLocked | errors.DatabaseUnavailable):
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


async def authenticate(
    ctx: ApiContext, runtime: Runtime, token: str, address: str | None = None
) -> Caller:
    """The token's caller; a success is reused for a moment, so a busy client costs no query.

    Only successes are cached (a new token works at once), keyed by the token's hash;
    a revoked token or deactivated user stops working within ``CALLER_TTL_S``. Wrong
    tokens are throttled per client ``address`` (core/accounts/token_throttle.py).
    """
    key = hash_token(token)
    _, caller = ctx.callers.peek(key)
    if caller is not None:
        return caller
    ctx.token_throttle.check(address, key, ctx.clock())

    def check() -> Caller:
        with runtime.sessions.begin() as session:
            return authenticate_token(session, token, ctx.clock())

    try:
        # A failed check raises, so it is not cached; concurrent misses share one query.
        # A database that is away gives 503 database_unavailable, bounded in time.
        caller = await in_thread(
            ctx.callers.get_or_load, key, check, timeout_s=ctx.settings.db_wait_s
        )
    except errors.AuthenticationFailed:
        await asyncio.to_thread(ctx.token_throttle.failed, runtime.sessions, address, ctx.clock())
        raise
    ctx.token_throttle.succeeded(key)
    return caller


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
            address = request.client.host if request.client else None
            caller = await authenticate(ctx, runtime, token, address)
            return await handler(ctx, request, Authed(runtime, caller, token, request_id))
        except SwitchboardError as exc:
            return error_response(exc, request_id)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening; just end the exchange
        except Exception as exc:
            if db.is_unavailable(exc):  # any step that reached the database: 503, not 500
                return error_response(db.unavailable(exc), request_id)
            body = unexpected(exc, request_id, request.url.path, token)
            headers = {"x-switchboard-request-id": request_id}
            return JSONResponse(body, status_code=500, headers=headers)

    return route
