"""Which models the Chat picker offers one person: those they can use first, then the rest.

"Can use" is what the Providers & keys page says (``core.settings.provider_status``): a
catalog provider with a key this person may use under their active profile, or one that
needs none, and every admin-defined endpoint's models (the gateway needs no key for
them). Catalog models without such a key are kept apart, so the page can hide them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.request import Caller
from core.settings import endpoints, provider_status, routes
from core.settings.targets import TargetResolver


@dataclass(frozen=True, slots=True)
class ModelChoice:
    usable: tuple[str, ...]  # catalog models with a usable key, then endpoint models
    without_key: tuple[str, ...]  # catalog models whose provider has no key for this person
    missing_providers: tuple[str, ...]  # those models' providers, for the page to name

    def is_usable(self, model_id: str) -> bool:
        return model_id in self.usable


def model_choice(
    session: Session,
    caller: Caller,
    resolver: TargetResolver,
    environ: Mapping[str, str],
    profile: str | None = None,
) -> ModelChoice:
    """The picker's models for ``caller`` under ``profile`` (its keys choice decides)."""
    found = routes.find_caller_profile(session, caller, profile)
    listed = endpoints.list_endpoints(session)
    catalog = resolver.catalog
    statuses = provider_status.provider_statuses(
        session,
        caller,
        catalog_providers=catalog.providers(),
        endpoints=listed,
        environ=environ,
        breakers=(),
        sources=routes.profile_key_sources(found),
    )
    available = {s.provider for s in statuses if s.available}
    usable: list[str] = []
    without: list[str] = []
    missing: set[str] = set()
    for info in catalog.models():
        if info.provider in available:
            usable.append(info.id)
        else:
            without.append(info.id)
            missing.add(info.provider)
    # The resolver's endpoints are the ones the gateway accepts right now.
    usable += [m for m in resolver.endpoint_models() if m.partition("/")[0] in available]
    return ModelChoice(tuple(usable), tuple(without), tuple(sorted(missing)))
