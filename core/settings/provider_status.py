"""Each provider as one person sees it: which key would pay, the breaker, how to fix it.

Used by the Providers & keys page; only masked keys and key sources appear here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from core.accounts import keys
from core.money.catalog import (
    PROVIDER_KEY_ENV,
    PROVIDER_KEY_URL,
    PROVIDER_LABELS,
    REQUIRED_PROVIDERS,
)
from core.request import Caller
from core.settings import local_servers
from core.settings.endpoints import EndpointInfo
from core.settings.targets import KEYLESS_PROVIDERS
from core.upstream.breaker import BreakerState

SOURCE_WORDS: Mapping[str, str] = {
    "own": "your own key",
    "team": "your team's key",
    "org": "the organisation's key",
    "env": "the server's environment key",
}


@dataclass(frozen=True)
class ProviderStatus:
    provider: str
    label: str
    kind: str  # "catalog" | "endpoint"
    key_source: str | None  # own | team | org | env | None
    masked: str | None
    key_required: bool
    breaker: str  # plain words
    key_url: str | None
    env_var: str | None
    last_auth_failure_at: datetime | None
    server_ready: bool = True  # False: a local server (ollama) with none configured or seen

    @property
    def available(self) -> bool:
        return self.server_ready and (self.key_source is not None or not self.key_required)

    @property
    def key_words(self) -> str:
        if self.key_source is not None:
            return f"{SOURCE_WORDS[self.key_source]} ({self.masked})"
        if not self.key_required:
            return "no key needed" if self.server_ready else "no key needed; no server configured"
        return "none"

    @property
    def fix(self) -> str | None:
        """How to make an unavailable provider usable, in plain words."""
        if not self.server_ready:
            return local_servers.server_words(self.provider)
        if self.available:
            if self.last_auth_failure_at is not None:
                return "The key was last refused by the provider; replace it or test it again."
            return None
        where = f" (get one at {self.key_url})" if self.key_url else ""
        env = f", or set {self.env_var} on the server" if self.env_var else ""
        return f"Add your own key below{where}, ask an admin for a team or organisation key{env}."


def provider_label(provider: str) -> str:
    fallback = " ".join(w.upper() if w == "ai" else w.capitalize() for w in provider.split("_"))
    return PROVIDER_LABELS.get(provider, fallback)


def breaker_words(provider: str, states: Sequence[BreakerState]) -> str:
    """Summarise the breakers of every deployment of this provider's models."""
    mine = [s for s in states if s.deployment.split("@", 1)[0].partition("/")[0] == provider]
    opened = [s for s in mine if s.state == "open"]
    if opened:
        until = max(s.retry_at for s in opened if s.retry_at is not None)
        worst = max(opened, key=lambda s: s.calls)
        return (
            f"paused: {len(opened)} model(s) failed {worst.failures} of their last "
            f"{worst.calls} calls; tested again after "
            f"{until.astimezone().strftime('%H:%M:%S')}"
        )
    probing = [s for s in mine if s.state == "half-open"]
    if probing:
        answered = sum(s.calls for s in probing)
        failed = sum(s.failures for s in probing)
        return f"recovering: a few test calls decide ({failed} of {answered} failed so far)"
    calls = sum(s.calls for s in mine)
    failing = sum(s.failures for s in mine)
    return f"working ({failing} of {calls} recent calls failed)" if failing else "working"


def provider_statuses(
    session: Session,
    caller: Caller,
    *,
    catalog_providers: Sequence[str],
    endpoints: Sequence[EndpointInfo],
    environ: Mapping[str, str],
    breakers: Sequence[BreakerState],
    sources: Sequence[str] = keys.ALL_SOURCES,
    now: datetime | None = None,
) -> list[ProviderStatus]:
    """First-class providers, then other catalog providers, then admin endpoints.

    A local-server provider (ollama) is available only with a server configured or one
    that answered recently (:mod:`core.settings.local_servers`).
    """
    ready = local_servers.ready(session, environ, endpoints, now or datetime.now(UTC))
    first = [p for p in REQUIRED_PROVIDERS if p in catalog_providers]
    others = [p for p in catalog_providers if p not in first]
    compatible = [e for e in endpoints if e.kind == "openai-compatible"]
    names = [*first, *others, *(e.name for e in compatible)]
    found = {s.provider: s for s in keys.key_status(session, caller, names, environ, sources)}
    endpoint_names = {e.name for e in compatible}
    result = []
    for name in names:
        status = found[name]
        is_endpoint = name in endpoint_names
        result.append(
            ProviderStatus(
                provider=name,
                label=name if is_endpoint else provider_label(name),
                kind="endpoint" if is_endpoint else "catalog",
                key_source=status.source,
                masked=status.masked,
                key_required=not is_endpoint and name not in KEYLESS_PROVIDERS,
                breaker=breaker_words(name, breakers),
                key_url=PROVIDER_KEY_URL.get(name),
                env_var=PROVIDER_KEY_ENV.get(name),
                last_auth_failure_at=status.last_auth_failure_at,
                server_ready=name not in local_servers.LOCAL_SERVERS or name in ready,
            )
        )
    return result
