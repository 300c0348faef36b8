"""Which chain of models a request uses, and in what order.

Precedence: the request's explicit ``fallbacks`` > the route for its task (the
active profile's, then user, team, org) > the profile's default > the user's default >
the team's default > the org default. A profile also chooses which keys the request
may use (``ResolvedRoute.key_sources``, see core.settings.profiles).
A requested model that is not in the chain is tried first, with the route's
fallbacks after it, unless the request says ``"fallbacks": []``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.errors import InvalidInput
from core.request import Caller
from core.store import audit
from core.store.ledger import ModelStats
from core.store.tables import ORG_OWNER_ID, Profile, ProfileRoute, RouteRow

SCOPES = ("user", "team", "org")
MAX_CHAIN = 8
MAX_RETRIES: Final = 5  # per model; the per-deployment retry budget still applies
MAX_TIMEOUT_S: Final = 3600.0  # an hour: longer is a hung request, not a slow one
MAX_TEMPERATURE: Final = 2.0
MAX_OUTPUT_TOKENS: Final = 1_000_000
# Option field -> the words a person sees in a refusal.
TIMEOUT_NAMES: Final = {
    "connect_timeout_s": "connect timeout",
    "first_token_timeout_s": "first-token timeout",
    "idle_timeout_s": "stream idle timeout",
    "total_timeout_s": "total timeout",
}
# Which key sources a request may use, in order, per profile keys choice.
DEFAULT_KEY_ORDER: tuple[str, ...] = ("own", "team", "org", "env")
KEY_ORDER: Mapping[str, tuple[str, ...]] = {
    "auto": DEFAULT_KEY_ORDER,
    "own": ("own",),
    "shared": ("team", "org", "env"),
}


@dataclass(frozen=True)
class Weights:
    price: float = 0.4
    latency: float = 0.3
    quality: float = 0.2  # observed success rate, blended with user ratings when present
    preference: float = 0.1


@dataclass(frozen=True)
class RouteOptions:
    auto_fallback: bool = True
    cost_optimised: bool = False
    weights: Weights = field(default_factory=Weights)
    max_retries: int = 2
    connect_timeout_s: float = 5.0
    first_token_timeout_s: float = 10.0
    idle_timeout_s: float = 10.0
    total_timeout_s: float = 300.0
    content_refusal_failover: bool = False
    temperature: float | None = None
    max_tokens: int | None = None
    # Preferred providers, best first: the "preference" part of cost-optimised scores.
    provider_order: tuple[str, ...] = ()
    # Leave out request fields a model does not take instead of refusing the request.
    drop_params: bool = False

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RouteOptions:
        data = dict(raw)
        weights = Weights(**data.pop("weights", {}))
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "provider_order" in known:
            known["provider_order"] = tuple(known["provider_order"] or ())
        return replace(cls(**known), weights=weights)

    def to_json(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "weights"}
        out["weights"] = vars(self.weights).copy()
        out["provider_order"] = list(self.provider_order)
        return out

    def changed(self) -> dict[str, Any]:
        """The fields that differ from the defaults, by name, in declaration order."""
        default = RouteOptions()
        return {
            k: getattr(self, k)
            for k in self.__dataclass_fields__
            if getattr(self, k) != getattr(default, k)
        }

    def preference_for(self, chain: Sequence[str]) -> tuple[str, ...]:
        """The chain's models ordered by provider preference (stable), for order_by_score."""
        if not self.provider_order:
            return ()
        rank = {p: i for i, p in enumerate(self.provider_order)}
        last = len(rank)
        return tuple(sorted(chain, key=lambda m: rank.get(m.partition("/")[0], last)))


@dataclass(frozen=True)
class ResolvedRoute:
    chain: tuple[str, ...]
    source: str  # request | task:<scope> | user | team | org
    options: RouteOptions
    order_reason: str | None = None
    key_sources: tuple[str, ...] = DEFAULT_KEY_ORDER  # from the profile's keys choice
    profile: str | None = None


def check_options(options: RouteOptions) -> None:
    """Refuse out-of-range options with a message that says the allowed range."""
    for name, words in TIMEOUT_NAMES.items():
        seconds = getattr(options, name)
        if not (math.isfinite(seconds) and 0 < seconds <= MAX_TIMEOUT_S):
            raise InvalidInput(
                f"The {words} {seconds:g} s is out of range; use more than 0 and at most "
                f"{MAX_TIMEOUT_S:g} seconds."
            )
    if not 0 <= options.max_retries <= MAX_RETRIES:
        raise InvalidInput(
            f"Retries {options.max_retries} is out of range; use 0 to {MAX_RETRIES}."
        )
    t = options.temperature
    if t is not None and not (math.isfinite(t) and 0.0 <= t <= MAX_TEMPERATURE):
        raise InvalidInput(
            f"Temperature {t} is out of range; use a value from 0 to {MAX_TEMPERATURE}."
        )
    if options.max_tokens is not None and not 1 <= options.max_tokens <= MAX_OUTPUT_TOKENS:
        raise InvalidInput(
            f"Max tokens {options.max_tokens} is out of range; use 1 to {MAX_OUTPUT_TOKENS:,}."
        )
    w = options.weights
    values = (w.price, w.latency, w.quality, w.preference)
    # 0..1 each, as the settings page edits them; the score only compares models.
    if not all(math.isfinite(v) and 0 <= v <= 1 for v in values) or sum(values) <= 0:
        raise InvalidInput("Weights must be from 0 to 1 each, and at least one above zero.")


def validate_chain(models: Sequence[str], known_model: Callable[[str], bool]) -> tuple[str, ...]:
    chain = tuple(m.strip() for m in models if m.strip())
    if not chain:
        raise InvalidInput("A route needs at least one model.")
    if len(chain) > MAX_CHAIN:
        raise InvalidInput(
            f"A route can hold at most {MAX_CHAIN} models; this one has {len(chain)}."
        )
    if len(set(chain)) != len(chain):
        raise InvalidInput("A model appears twice in the chain; list each model once.")
    unknown = [m for m in chain if not known_model(m)]
    if unknown:
        raise InvalidInput(
            f"Unknown model {unknown[0]!r}. Use an id from `switchboard models`, "
            "or <endpoint>/<model> for an admin-defined endpoint."
        )
    return chain


def set_route(
    session: Session,
    *,
    scope: str,
    scope_id: int,
    models: Sequence[str],
    known_model: Callable[[str], bool],
    actor: str,
    now: datetime,
    task: str = "",
    options: RouteOptions | None = None,
) -> None:
    """Create or replace a route (last save wins) and audit it.

    ``options`` replaces the stored options whole: to change one, pass the saved
    options with that one replaced (``dataclasses.replace``), not fresh defaults.
    """
    if scope not in SCOPES:
        raise InvalidInput(f"Unknown route scope {scope!r}; use user, team or org.")
    chain = validate_chain(models, known_model)
    check_options(options or RouteOptions())
    task = task.strip().lower()
    if len(task) > 64:
        raise InvalidInput("A task name can be at most 64 characters.")
    if scope == "org":
        scope_id = ORG_OWNER_ID
    row = session.scalar(
        select(RouteRow).where(
            RouteRow.scope == scope, RouteRow.scope_id == scope_id, RouteRow.task == task
        )
    )
    opts = (options or RouteOptions()).to_json()
    if row is None:
        row = RouteRow(
            scope=scope,
            scope_id=scope_id,
            task=task,
            models=list(chain),
            options=opts,
            updated_at=now,
            updated_by=actor,
        )
        session.add(row)
    else:
        row.models, row.options, row.updated_at, row.updated_by = list(chain), opts, now, actor
    audit.record(
        session,
        actor=actor,
        action="route.set",
        target=f"{scope}:{scope_id}:{task or '*'}",
        now=now,
        details={"models": list(chain), "cost_optimised": opts["cost_optimised"]},
    )


def resolve(
    session: Session,
    caller: Caller,
    *,
    model: str,
    fallbacks: Sequence[str] | None,
    task: str,
    profile: str | None = None,
) -> ResolvedRoute:
    """The chain for one request (not yet reordered for cost).

    ``profile`` names one of the caller's profiles; its routes win over the user's
    and its keys choice sets ``key_sources``. An unknown profile is InvalidInput.
    """
    found_profile = find_caller_profile(session, caller, profile)
    key_sources = profile_key_sources(found_profile)
    profile_name = found_profile.name if found_profile else None
    explicit = model not in ("", "auto")
    if fallbacks is not None:
        chain = ((model,) if explicit else ()) + tuple(f for f in fallbacks if f != model)
        if not chain:
            raise InvalidInput("Give a model, or a non-empty `fallbacks` list, or omit both.")
        return ResolvedRoute(chain, "request", RouteOptions(), None, key_sources, profile_name)
    found = _find_route(session, caller, task.strip().lower(), found_profile)
    if found is None:
        if not explicit:
            raise InvalidInput(
                "No route is configured for you, so `auto` has nothing to pick. Name a model, "
                "or ask an admin to set a default (`switchboard route set --org --model M`)."
            )
        return ResolvedRoute((model,), "request", RouteOptions(), None, key_sources, profile_name)
    models, raw_options, source = found
    options = RouteOptions.from_json(raw_options)
    chain = tuple(models)
    if explicit:
        chain = (model, *(m for m in chain if m != model))
    if not options.auto_fallback:
        chain = chain[:1]
    return ResolvedRoute(chain, source, options, None, key_sources, profile_name)


ROUTE_SOURCE_WORDS: Final = {
    "profile": "this profile's default route",
    "user": "your own default route",
    "team": "your team's default route",
    "org": "the organisation's default route",
}


def default_route(
    session: Session, caller: Caller, profile: str | None = None
) -> ResolvedRoute | None:
    """The default route in force for ``caller`` now (whole chain, where it comes from).

    What a request naming no model and no task would use, before automatic fallback
    trims it; None when no route applies, so such a request would be refused.
    """
    found_profile = find_caller_profile(session, caller, profile)
    found = _find_route(session, caller, "", found_profile)
    if found is None:
        return None
    models, raw_options, source = found
    return ResolvedRoute(
        tuple(models),
        source,
        RouteOptions.from_json(raw_options),
        None,
        profile_key_sources(found_profile),
        found_profile.name if found_profile else None,
    )


def profile_key_sources(profile: Profile | None) -> tuple[str, ...]:
    """Where keys are looked up, in order, under ``profile`` (its keys choice)."""
    return KEY_ORDER[profile.keys_choice] if profile else DEFAULT_KEY_ORDER


def find_caller_profile(session: Session, caller: Caller, name: str | None) -> Profile | None:
    """The caller's profile by name (None for no name); an unknown name is InvalidInput."""
    if name is None or not name.strip():
        return None
    row = session.scalar(
        select(Profile).where(Profile.user_id == caller.user_id, Profile.name == name.strip())
    )
    if row is None:
        raise InvalidInput(
            f"You have no profile named {name.strip()!r}. Pick one of your profiles (the "
            "sidebar switch, or the Model preferences page lists them), or send no profile."
        )
    return row


def _find_route(
    session: Session, caller: Caller, task: str, profile: Profile | None
) -> tuple[list[str], dict[str, Any], str] | None:
    tasks = [task, ""] if task else [""]
    profile_rows: dict[str, ProfileRoute] = {}
    if profile is not None:
        profile_rows = {
            r.task: r
            for r in session.scalars(
                select(ProfileRoute).where(
                    ProfileRoute.profile_id == profile.id, ProfileRoute.task.in_(tasks)
                )
            )
        }
    for t in tasks:
        # The profile's route for this task beats every scope's route for it.
        if t in profile_rows:
            row = profile_rows[t]
            return list(row.models), dict(row.options), ("task:profile" if t else "profile")
        scoped = _find_scoped(session, caller, t)
        if scoped is not None:
            return list(scoped[0].models), dict(scoped[0].options), scoped[1]
    return None


def _find_scoped(session: Session, caller: Caller, task: str) -> tuple[RouteRow, str] | None:
    """The user's, team's or org's route for exactly this task ("" = default)."""
    scopes = [("user", caller.user_id), ("org", ORG_OWNER_ID)]
    if caller.team_id is not None:
        scopes.insert(1, ("team", caller.team_id))
    rows = session.scalars(
        select(RouteRow).where(
            or_(*((RouteRow.scope == s) & (RouteRow.scope_id == i) for s, i in scopes)),
            RouteRow.task == task,
        )
    ).all()
    found = {r.scope: r for r in rows}
    for s, _ in scopes:
        if s in found:
            return found[s], (f"task:{s}" if task else s)
    return None


def order_by_score(
    chain: Sequence[str],
    *,
    weights: Weights,
    prices: Mapping[str, Decimal | None],
    stats: Mapping[str, ModelStats],
    ratings: Mapping[str, float] | None = None,
    preference: Sequence[str] = (),
) -> tuple[tuple[str, ...], str]:
    """Cost-optimised order: higher score first. Returns the order and its reason."""
    blended = {m: p for m, p in prices.items() if p is not None}
    latencies = {
        m: float(s.p50_latency_ms) for m, s in stats.items() if s.p50_latency_ms is not None
    }
    ratings = ratings or {}

    def scale_low_good(value: float | None, values: Sequence[float]) -> float:
        if value is None or not values:
            return 0.5  # unknown: neutral, neither rewarded nor punished
        lo, hi = min(values), max(values)
        return 1.0 if math.isclose(hi, lo) else 1 - (value - lo) / (hi - lo)

    scores: dict[str, tuple[float, str]] = {}
    pref_list = list(preference) or list(chain)
    for model in chain:
        price = blended.get(model)
        p = scale_low_good(
            float(price) if price is not None else None, [float(v) for v in blended.values()]
        )
        lat = scale_low_good(latencies.get(model), list(latencies.values()))
        st = stats.get(model)
        observed = [
            v
            for v in (st.success_rate if st and st.requests else None, ratings.get(model))
            if v is not None
        ]
        quality = sum(observed) / len(observed) if observed else 0.5
        pref_list = list(preference) or list(chain)
        pref = (
            1 - (pref_list.index(model) / max(1, len(pref_list) - 1)) if model in pref_list else 0.0
        )
        total = (
            weights.price * p
            + weights.latency * lat
            + weights.quality * quality
            + weights.preference * pref
        )
        scores[model] = (
            total,
            f"{model}={total:.2f} (price {p:.2f}, latency {lat:.2f}, "
            f"quality {quality:.2f}, preference {pref:.2f})",
        )
    ordered = tuple(sorted(chain, key=lambda m: -scores[m][0]))
    reason = "cost-optimised: " + "; ".join(scores[m][1] for m in ordered)
    return ordered, reason


def delete_route(
    session: Session, *, scope: str, scope_id: int, task: str, actor: str, now: datetime
) -> bool:
    """Remove one route (e.g. a user's task route); False when there was none."""
    if scope == "org":
        scope_id = ORG_OWNER_ID
    row = session.scalar(
        select(RouteRow).where(
            RouteRow.scope == scope, RouteRow.scope_id == scope_id, RouteRow.task == task
        )
    )
    if row is None:
        return False
    session.delete(row)
    audit.record(
        session,
        actor=actor,
        action="route.delete",
        target=f"{scope}:{scope_id}:{task or '*'}",
        now=now,
    )
    return True


def get_route(session: Session, *, scope: str, scope_id: int, task: str = "") -> RouteRow | None:
    return session.scalar(
        select(RouteRow).where(
            RouteRow.scope == scope, RouteRow.scope_id == scope_id, RouteRow.task == task
        )
    )
