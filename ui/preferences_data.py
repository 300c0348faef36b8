"""What the Model preferences page shows, read once a run: one person's profile, routes,
keys and the figures the recommendations and chain preview rest on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

import streamlit as st

from core.accounts.auth import UserInfo
from core.clock import utc_now
from core.compare import leaderboard, recommend
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
from ui.resources import Services, services


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


STATS_WINDOW = timedelta(days=7)
STATS_REFRESH = timedelta(minutes=10)


@st.cache_data(ttl=STATS_REFRESH, max_entries=4, show_spinner=False)
def recent_stats(since: datetime) -> dict[str, ModelStats]:
    """The last week's per-model figures for the chain preview: a scan of the attempts
    (a second at 1M requests), so computed once per ``since`` (stepped by STATS_REFRESH)
    for every user, not on every click."""
    with services().sessions() as session:
        return ledger.recent_stats(session, since)


@st.cache_data(max_entries=64, show_spinner=False)
def team_ratings(team_id: int | None, votes: object) -> TeamRatings:
    """Refitted once per vote: ``votes`` is leaderboard.votes_stamp and keys the cache."""
    with services().sessions() as session:
        return recommend.team_ratings(session, team_id)


def _stats_since() -> datetime:
    now = utc_now()
    step = int(STATS_REFRESH.total_seconds())
    return datetime.fromtimestamp(now.timestamp() // step * step, tz=now.tzinfo) - STATS_WINDOW


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
            stats=recent_stats(_stats_since()),
            ratings=team_ratings(me.team_id, leaderboard.votes_stamp(session)),
            resolver=gw.resolver(),
            in_force=routes.default_route(session, me, profile.name if profile else None),
        )
