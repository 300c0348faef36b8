"""``GET /v1/models`` and ``GET /v1/models/{id}``: the models a caller can use.

Both take ``?profile=NAME``: that profile's keys choice decides what is usable;
``?all=true`` lists every model with an ``available`` flag.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.accounts import keys
from core.api.context import ApiContext, Authed
from core.clock import utc_now
from core.errors import ModelNotAllowed
from core.gateway.run import not_allowed
from core.gateway.runtime import Runtime
from core.request import Caller
from core.settings import endpoints, local_servers, routes
from core.settings.targets import KEYLESS_PROVIDERS


def _model(model_id: str, provider: str, **extra: Any) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": provider, **extra}


def _usable_providers(
    runtime: Runtime,
    caller: Caller,
    environ: Mapping[str, str],
    profile: str | None,
    now: datetime | None = None,
) -> tuple[set[str], str | None]:
    """Providers with a key this caller may use under ``profile``, or needing none.

    A keyless local server (ollama) counts only when one is configured or answered
    recently: needing no key does not make 21 models callable.
    """
    with runtime.sessions() as session:
        found = routes.find_caller_profile(session, caller, profile)
        status = keys.key_status(
            session, caller, runtime.catalog.providers(), environ, routes.profile_key_sources(found)
        )
        listed = endpoints.list_endpoints(session)
        ready = local_servers.ready(session, environ, listed, now or utc_now())
    keyless = (KEYLESS_PROVIDERS - set(local_servers.LOCAL_SERVERS)) | ready
    usable = {s.provider for s in status if s.source is not None} | keyless
    return usable, found.name if found else None


def list_models(
    runtime: Runtime,
    caller: Caller,
    environ: Mapping[str, str],
    show_all: bool,
    profile: str | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Catalog models whose provider has a key for ``caller`` (or needs none), then endpoints."""
    usable, _ = _usable_providers(runtime, caller, environ, profile, now)
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
    runtime: Runtime,
    caller: Caller,
    environ: Mapping[str, str],
    model_id: str,
    profile: str | None = None,
) -> dict[str, Any]:
    """One model, as /v1/models lists it; 404 if unknown, 403 if the caller has no key."""
    target = runtime.gateway.resolver().resolve(model_id)  # NotFound if unknown
    if target.provider in local_servers.LOCAL_SERVERS:
        usable, _ = _usable_providers(runtime, caller, environ, profile)
        if target.provider not in usable:
            raise ModelNotAllowed(
                f"You may not use {target.model_id}: "
                + local_servers.server_words(target.provider)
                + " GET /v1/models lists the models you can use."
            )
    elif target.key_required:
        usable, profile_name = _usable_providers(runtime, caller, environ, profile)
        if target.provider not in usable:
            raise not_allowed(target, profile_name)  # as a chat request for it would be
    return _model(target.model_id, target.provider)


async def models(ctx: ApiContext, request: Request, auth: Authed) -> Response:
    model_id = request.path_params.get("model_id")
    profile = request.query_params.get("profile") or None
    if model_id:
        return JSONResponse(
            await asyncio.to_thread(
                find_model, auth.runtime, auth.caller, ctx.environ, model_id, profile
            )
        )
    show_all = request.query_params.get("all", "").lower() in ("1", "true", "yes")
    data = await asyncio.to_thread(
        list_models, auth.runtime, auth.caller, ctx.environ, show_all, profile, ctx.clock()
    )
    return JSONResponse({"object": "list", "data": data})
