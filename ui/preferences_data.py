"""What the Model preferences page shows, read once a run: one person's profile, routes,
keys and the figures the recommendations and chain preview rest on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property

from core.accounts.auth import UserInfo
from core.clock import utc_now
from core.compare import recommend
from core.compare.recommend import TeamRatings
from core.request import Caller
from core.settings import endpoints, preferences, profiles, provider_status, routes
from core.settings.endpoints import EndpointInfo
from core.settings.preferences import RouteSetting
from core.settings.profiles import ProfileInfo
from core.settings.provider_status import ProviderStatus
from core.settings.routes import ResolvedRoute
from core.settings.targets import TargetResolver
from core.store import ledger
from core.store.ledger import ModelStats
from ui import settings
from ui.resources import Services


@dataclass(frozen=True)
class PreferencesData:
    svc: Services
    user: UserInfo
    me: Caller
    profile: ProfileInfo | None
    my_profiles: list[ProfileInfo]
    saved: dict[str, RouteSetting]
    listed: list[EndpointInfo]
    statuses: list[ProviderStatus]
    stats: dict[str, ModelStats]
    ratings: TeamRatings
    resolver: TargetResolver
    in_force: ResolvedRoute | None  # the default route that applies today, wherever it is set

    # Derived once per run: the sections read them several times.
    @cached_property
    def usable(self) -> dict[str, bool]:
        return {s.provider: s.available for s in self.statuses}

    @cached_property
    def with_keys(self) -> list[str]:
        return [p for p, ok in self.usable.items() if ok]

    @cached_property
    def keyed(self) -> list[str]:
        return [s.provider for s in self.statuses if s.key_source is not None]

    @cached_property
    def _key_sources(self) -> dict[str, str | None]:
        return {s.provider: s.key_source for s in self.statuses}

    def key_source(self, provider: str) -> str | None:
        return self._key_sources.get(provider)

    def label(self, model_id: str) -> str:
        return preferences.model_label(model_id, self.svc.catalog.get)


def load_preferences(svc: Services, user: UserInfo) -> PreferencesData:
    me = settings.caller(svc, user.id)
    profile = settings.current_profile(svc, user.id)
    gw = svc.runtime.gateway
    with svc.sessions() as session:
        listed = endpoints.list_endpoints(session)
        return PreferencesData(
            svc=svc,
            user=user,
            me=me,
            profile=profile,
            my_profiles=profiles.list_profiles(session, user.id),
            saved=preferences.routes_for(session, user.id, profile),
            listed=listed,
            statuses=provider_status.provider_statuses(
                session,
                me,
                catalog_providers=svc.catalog.providers(),
                endpoints=listed,
                environ=gw.environ,
                breakers=gw.breaker_states(),
                sources=settings.key_order(profile),
            ),
            stats=ledger.recent_stats(session, utc_now() - timedelta(days=7)),
            ratings=recommend.team_ratings(session, me.team_id),
            resolver=gw.resolver(),
            in_force=routes.default_route(session, me, profile.name if profile else None),
        )
