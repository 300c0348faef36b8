"""Admin-defined endpoints: new OpenAI-compatible providers, or base-URL overrides.

* ``openai-compatible``: a new provider named by the admin (e.g. ``corp-vllm``) whose
  models are called as ``<name>/<model>``. Its name must not be a built-in provider.
* ``override``: a built-in provider (e.g. ``openai``) sent to another base URL, such as a
  company proxy; it keeps its catalog models and prices.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, cast, get_args
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.errors import Conflict, InvalidInput, NotFound
from core.store import audit
from core.store.tables import ApiKey, Endpoint

EndpointKind = Literal["openai-compatible", "override"]
ENDPOINT_KINDS: tuple[EndpointKind, ...] = get_args(EndpointKind)
MAX_URL_LENGTH = 512
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class EndpointInfo:
    name: str
    kind: EndpointKind
    api_base: str
    models: tuple[str, ...]
    supports_prefill: bool


def _info(row: Endpoint) -> EndpointInfo:
    return EndpointInfo(
        name=row.name,
        kind=cast(EndpointKind, row.kind),
        api_base=row.api_base,
        models=tuple(row.models),
        supports_prefill=row.supports_prefill,
    )


def validate_api_base(api_base: str) -> str:
    """An http(s) URL with a host and no credentials, without its trailing slash."""
    url = api_base.strip()
    bad = InvalidInput(
        f"{url!r} is not a valid http(s) URL. Use one such as https://llm.example.com/v1."
    )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError:
        raise bad from None
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > MAX_URL_LENGTH:
        raise bad
    if any(ch.isspace() for ch in url) or parts.fragment:
        raise bad
    if parts.username or parts.password:
        # The URL is shown in listings and stored in clear; keys belong in `key set`.
        raise InvalidInput(
            "Put credentials in a key (`switchboard key set NAME`), not in the endpoint URL."
        )
    return url.rstrip("/")


def validate_models(models: Sequence[str]) -> tuple[str, ...]:
    clean: list[str] = []
    for model in models:
        name = model.strip()
        if not name or any(ch.isspace() for ch in name) or len(name) > 200:
            raise InvalidInput(
                f"Model name {model!r} is not allowed: names are non-empty, at most 200 "
                "characters, and contain no spaces."
            )
        clean.append(name)
    return tuple(dict.fromkeys(clean))  # drop repeats, keep order


def _validate(name: str, kind: str, builtin_providers: Collection[str]) -> tuple[str, EndpointKind]:
    clean = name.strip()
    if kind not in ENDPOINT_KINDS:
        raise InvalidInput(
            f"Unknown endpoint type {kind!r}; use one of {', '.join(ENDPOINT_KINDS)}."
        )
    if not _NAME_RE.match(clean):
        raise InvalidInput(
            f"Endpoint name {clean!r} is not allowed. Use up to 64 lowercase letters, digits, "
            "dashes or underscores, starting with a letter or digit."
        )
    if kind == "openai-compatible" and clean in builtin_providers:
        raise InvalidInput(
            f"{clean!r} is a built-in provider. To send it to another URL, add an override: "
            f"`switchboard provider add {clean} --type {clean} --api-base URL`."
        )
    if kind == "override" and clean not in builtin_providers:
        raise InvalidInput(
            f"Only a built-in provider can be overridden, and {clean!r} is not one. "
            "`switchboard models` lists the built-in providers."
        )
    return clean, kind


def _find(session: Session, name: str) -> Endpoint | None:
    return session.scalar(select(Endpoint).where(Endpoint.name == name))


def _write(
    session: Session,
    row: Endpoint | None,
    *,
    name: str,
    kind: str,
    api_base: str,
    models: Sequence[str],
    supports_prefill: bool,
    actor: str,
    now: datetime,
    builtin_providers: Collection[str],
) -> EndpointInfo:
    clean, checked_kind = _validate(name, kind, builtin_providers)
    url = validate_api_base(api_base)
    model_names = validate_models(models)
    action = "endpoint.update" if row is not None else "endpoint.create"
    if row is None:
        row = Endpoint(name=clean, created_at=now)
        session.add(row)
    row.kind, row.api_base, row.models = checked_kind, url, list(model_names)
    row.supports_prefill, row.updated_at = supports_prefill, now
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=action,
        target=clean,
        now=now,
        details={"kind": checked_kind, "api_base": url, "models": list(model_names)},
    )
    return _info(row)


def add_endpoint(
    session: Session,
    *,
    name: str,
    kind: str,
    api_base: str,
    models: Sequence[str] = (),
    supports_prefill: bool = False,
    actor: str,
    now: datetime,
    builtin_providers: Collection[str],
) -> EndpointInfo:
    """Create an endpoint; a name already in use is a Conflict."""
    if _find(session, name.strip()) is not None:
        raise Conflict(
            f"An endpoint named {name.strip()!r} already exists. Delete it first, or pick "
            "another name; `switchboard provider list` shows the endpoints."
        )
    return _write(
        session, None, name=name, kind=kind, api_base=api_base, models=models,
        supports_prefill=supports_prefill, actor=actor, now=now,
        builtin_providers=builtin_providers,
    )  # fmt: skip


def update_endpoint(
    session: Session,
    *,
    name: str,
    kind: str,
    api_base: str,
    models: Sequence[str] = (),
    supports_prefill: bool = False,
    actor: str,
    now: datetime,
    builtin_providers: Collection[str],
) -> EndpointInfo:
    """Create or replace an endpoint with exactly these settings (the edit form's save)."""
    return _write(
        session, _find(session, name.strip()), name=name, kind=kind, api_base=api_base,
        models=models, supports_prefill=supports_prefill, actor=actor, now=now,
        builtin_providers=builtin_providers,
    )  # fmt: skip


def delete_endpoint(session: Session, *, name: str, actor: str, now: datetime) -> None:
    """Remove an endpoint. Keys stored for an openai-compatible one go too, so a later
    endpoint reusing the name (perhaps on another host) never receives them."""
    row = _find(session, name.strip())
    if row is None:
        raise NotFound(f"No endpoint named {name!r}. `switchboard provider list` shows them.")
    dropped = 0
    if row.kind == "openai-compatible":
        result = session.execute(delete(ApiKey).where(ApiKey.provider == row.name))
        dropped = int(getattr(result, "rowcount", 0) or 0)
    session.delete(row)
    audit.record(
        session,
        actor=actor,
        action="endpoint.delete",
        target=row.name,
        now=now,
        details={"kind": row.kind, "keys_removed": dropped},
    )


def get_endpoint(session: Session, name: str) -> EndpointInfo | None:
    row = _find(session, name)
    return _info(row) if row else None


def list_endpoints(session: Session) -> list[EndpointInfo]:
    return [_info(r) for r in session.scalars(select(Endpoint).order_by(Endpoint.name))]
