"""HTTP routes served beside the dashboard by `st.App` (and alone by `switchboard api`).

* ``GET  /health``               whether the process can reach its database
* ``POST /v1/chat/completions``  OpenAI chat completions through the gateway
* ``GET  /v1/models``            models the caller can use (``?all=true``: every model)
* ``GET  /v1/models/{id}``       one model, 403 if the caller could not use it
  (both take ``?profile=NAME``: that profile's keys choice decides what is usable)

Each endpoint has its own module (core/api/chat_completions.py, core/api/model_list.py);
core/api/context.py holds what they share: bearer auth, body limits and OpenAI-shaped
errors. This module wires them into one app, with /health.
"""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from core.api.chat_completions import chat_completions
from core.api.context import ApiContext, endpoint
from core.api.model_list import models
from core.api.tcp_cork import CorkedResponses
from core.config import load_settings
from core.errors import SwitchboardError
from core.store import db


async def health(ctx: ApiContext, request: Request) -> JSONResponse:
    """``ok``; ``degraded`` (200) while the ledger journal holds rows for the database, or
    (503) while the schema is behind; ``error`` (503) when the database cannot be reached."""
    backlog = ctx.backlog()
    journal = (
        {"queued": backlog.entries, "orphans": backlog.orphans, "in_flight": backlog.in_flight}
        if backlog is not None
        else None
    )
    try:
        engine = ctx.engine()
        await asyncio.to_thread(db.check_connection, engine)
        revision = await asyncio.to_thread(db.current_revision, engine)
    except SwitchboardError as exc:
        body: dict[str, object] = {"status": "error", "database": exc.message}
        if journal is not None:
            body["journal"] = journal
        return JSONResponse(body, status_code=503)
    current = revision == db.head_revision()
    queued = backlog is not None and backlog.queued > 0
    body = {"status": "ok" if current and not queued else "degraded", "database": "ok"}
    body["schema"] = revision
    if journal is not None:
        body["journal"] = journal
    if not current:
        body["hint"] = "The schema is behind; run `switchboard init`."
    elif queued:
        body["hint"] = (
            "Ledger rows wait in the local journal and are being written to the database."
        )
    return JSONResponse(body, status_code=200 if current else 503)


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
