"""HTTP routes served beside the dashboard by `st.App` (and by `switchboard api`).

The OpenAI-compatible `/v1` routes mount here; `/health` reports whether the
process can reach its database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from core import db
from core.config import Settings, load_settings
from core.errors import SwitchboardError


@dataclass
class ApiContext:
    """Per-process API resources, built on first use so importing never touches the DB."""

    settings: Settings
    _engine: Engine | None = field(default=None, repr=False)

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = db.make_engine(self.settings.database_url)
        return self._engine


async def _health(ctx: ApiContext, request: Request) -> JSONResponse:
    try:
        engine = ctx.engine()
        db.check_connection(engine)
        revision = db.current_revision(engine)
    except SwitchboardError as exc:
        return JSONResponse({"status": "error", "database": exc.message}, status_code=503)
    ok = revision == db.head_revision()
    body = {"status": "ok" if ok else "degraded", "database": "ok", "schema": revision}
    if not ok:
        body["hint"] = "The schema is behind; run `switchboard init`."
    return JSONResponse(body, status_code=200 if ok else 503)


def api_routes(ctx: ApiContext | None = None) -> list[BaseRoute]:
    context = ctx or ApiContext(load_settings())

    async def health(request: Request) -> JSONResponse:
        return await _health(context, request)

    return [Route("/health", health, methods=["GET"])]
