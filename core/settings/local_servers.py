"""Providers that are a server you run yourself (Ollama, Lemonade): needing no key is not
the same as being there.

Such a provider's models count as available only when a server is configured (a
base-URL override on Admin > Endpoints, or the provider's ``*_API_BASE`` variable in the
server's environment) or when the provider answered a request recently. Otherwise the
catalog's 21 Ollama models would be offered to everyone, and fail on the first call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.request import STATUS_FALLBACK, STATUS_SUCCESS
from core.settings.endpoints import EndpointInfo
from core.store.tables import RequestRow

# Provider -> the variable litellm reads its base URL from.
LOCAL_SERVERS: Final[Mapping[str, str]] = {
    "ollama": "OLLAMA_API_BASE",
    "lemonade": "LEMONADE_API_BASE",
}
RECENT: Final = timedelta(hours=24)  # an answer this recent shows a server is there


def configured(environ: Mapping[str, str], endpoints: Sequence[EndpointInfo]) -> set[str]:
    """Local-server providers with a base URL set, by an admin or in the environment."""
    overridden = {e.name for e in endpoints if e.kind == "override"}
    return {
        provider
        for provider, variable in LOCAL_SERVERS.items()
        if provider in overridden or environ.get(variable, "").strip()
    }


def answered_recently(session: Session, now: datetime) -> set[str]:
    """Local-server providers that served a request successfully in the last day."""
    rows = session.scalars(
        select(RequestRow.provider)
        .where(
            RequestRow.at >= now - RECENT,
            RequestRow.provider.in_(list(LOCAL_SERVERS)),
            RequestRow.status.in_((STATUS_SUCCESS, STATUS_FALLBACK)),
        )
        .distinct()
    )
    return {str(p) for p in rows}


def ready(
    session: Session,
    environ: Mapping[str, str],
    endpoints: Sequence[EndpointInfo],
    now: datetime,
) -> frozenset[str]:
    """Local-server providers whose models may be offered as available."""
    found = configured(environ, endpoints)
    if found != set(LOCAL_SERVERS):  # the ledger is asked only about the others
        found |= answered_recently(session, now)
    return frozenset(found)


def server_words(provider: str) -> str:
    """How to make a local-server provider available, in plain words."""
    variable = LOCAL_SERVERS.get(provider, "its *_API_BASE variable")
    return (
        f"No {provider} server is configured. Ask an admin to add a base-URL override for "
        f"{provider} on Admin → Endpoints (or set {variable} on the server)."
    )
