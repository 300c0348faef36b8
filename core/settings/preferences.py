"""A person's model preferences: default model, fallback chain, per-task routes, provider order.

Settings are edited either for the user's own routes (no profile) or for one of
their profiles; both share this module so the Model preferences page stays thin.
``preview_chain`` shows what a request would try, in order, given the keys and the
circuit breakers right now.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import InvalidInput, NotFound
from core.money.catalog import ModelInfo
from core.request import Caller
from core.settings import profiles, routes
from core.settings.profiles import ProfileInfo
from core.settings.routes import RouteOptions
from core.settings.targets import TargetResolver
from core.store import audit
from core.store.ledger import ModelStats
from core.store.tables import PreferenceRefusal, RouteRow
from core.upstream.breaker import BreakerState

DEFAULT_TASKS: Final = ("outline", "chapter", "dialogue", "refine", "code", "translation", "chat")


@dataclass(frozen=True)
class RouteSetting:
    task: str  # "" is the default route
    models: tuple[str, ...]
    options: RouteOptions
    updated_at: datetime
    updated_by: str

    @property
    def default_model(self) -> str:
        return self.models[0]

    @property
    def fallbacks(self) -> tuple[str, ...]:
        return self.models[1:]


@dataclass(frozen=True)
class PreviewStep:
    model: str
    provider: str | None
    position: int | None  # the order it would be tried in (1 = first); None when skipped
    reason: str  # plain words: why it is tried or skipped


def routes_for(
    session: Session, user_id: int, profile: ProfileInfo | None
) -> dict[str, RouteSetting]:
    """The routes being edited, by task: the profile's, or the user's own."""
    if profile is not None:
        return {
            task: RouteSetting(task, r.models, r.options, r.updated_at, r.updated_by)
            for task, r in profiles.profile_routes(session, profile.id).items()
        }
    rows = session.scalars(
        select(RouteRow).where(RouteRow.scope == "user", RouteRow.scope_id == user_id)
    )
    return {
        r.task: RouteSetting(
            r.task, tuple(r.models), RouteOptions.from_json(r.options), r.updated_at, r.updated_by
        )
        for r in rows
    }


def save_route(
    session: Session,
    *,
    user_id: int,
    profile: ProfileInfo | None,
    models: Sequence[str],
    known_model: Callable[[str], bool],
    actor: str,
    now: datetime,
    task: str = "",
    options: RouteOptions | None = None,
) -> None:
    """Validate, then save one route for the user or their profile (last save wins)."""
    opts = options or RouteOptions()
    routes.check_options(opts)
    clean_task = task.strip().lower()
    if task and not clean_task:
        raise InvalidInput("The task name is empty. Type a name such as code or outline.")
    if profile is not None:
        profiles.set_profile_route(
            session,
            profile_id=profile.id,
            models=models,
            known_model=known_model,
            actor=actor,
            now=now,
            task=clean_task,
            options=opts,
        )
    else:
        routes.set_route(
            session,
            scope="user",
            scope_id=user_id,
            models=models,
            known_model=known_model,
            actor=actor,
            now=now,
            task=clean_task,
            options=opts,
        )


def remove_route(
    session: Session,
    *,
    user_id: int,
    profile: ProfileInfo | None,
    task: str,
    actor: str,
    now: datetime,
) -> None:
    if profile is not None:
        removed = profiles.delete_profile_route(
            session, profile_id=profile.id, task=task, actor=actor, now=now
        )
    else:
        removed = routes.delete_route(
            session, scope="user", scope_id=user_id, task=task, actor=actor, now=now
        )
    if not removed:
        raise NotFound(f"There is no route for {task or 'the default'} to remove.")


def save_default_model(
    session: Session,
    *,
    user_id: int,
    profile: ProfileInfo | None,
    model: str,
    known_model: Callable[[str], bool],
    actor: str,
    now: datetime,
) -> tuple[str, ...]:
    """Make ``model`` the default; the existing fallbacks stay behind it. Returns the chain."""
    current = routes_for(session, user_id, profile).get("")
    rest = [m for m in (current.models if current else ()) if m != model]
    chain = (model, *rest)[: routes.MAX_CHAIN]
    save_route(
        session,
        user_id=user_id,
        profile=profile,
        models=chain,
        known_model=known_model,
        actor=actor,
        now=now,
        options=current.options if current else None,
    )
    return chain


def save_provider_order(
    sessions: sessionmaker[Session],
    *,
    caller: Caller,
    profile: ProfileInfo | None,
    order: Sequence[str],
    usable: Mapping[str, bool],
    actor: str,
    now: datetime,
) -> None:
    """Save the preferred providers, best first, into the default route's options.

    A provider the caller has no usable key for is refused: nothing is saved, the
    refusal is recorded (for the analytics alerts) and InvalidInput says why.
    Owns its transactions, since the refusal must be kept although the save is not.
    """
    clean = list(dict.fromkeys(p.strip() for p in order if p.strip()))
    unknown = [p for p in clean if p not in usable]
    if unknown:
        raise InvalidInput(f"Unknown provider {unknown[0]!r}; pick one from the list.")
    missing = [p for p in clean if not usable[p]]
    if missing:
        reason = (
            f"No usable key for {', '.join(missing)}"
            + (f" under profile {profile.name!r}" if profile else "")
            + ": add one on the Providers & keys page first, or ask an admin for a team key."
        )
        with sessions.begin() as session:
            for provider in missing:
                session.add(
                    PreferenceRefusal(
                        at=now,
                        user_id=caller.user_id,
                        username=caller.username,
                        provider=provider,
                        reason=reason,
                    )
                )
            audit.record(
                session,
                actor=actor,
                action="preference.refused",
                target=caller.username,
                now=now,
                details={"providers": missing, "profile": profile.name if profile else None},
            )
        raise InvalidInput(f"Not saved. {reason}")
    with sessions.begin() as session:
        current = routes_for(session, caller.user_id, profile).get("")
        if current is None:
            raise InvalidInput("Choose a default model first; the provider order is saved with it.")
        options = replace(current.options, provider_order=tuple(clean))
        save_route(
            session,
            user_id=caller.user_id,
            profile=profile,
            models=current.models,
            known_model=lambda _m: True,
            actor=actor,
            now=now,
            options=options,
        )


def preview_chain(
    chain: Sequence[str],
    options: RouteOptions,
    *,
    resolver: TargetResolver,
    key_source: Callable[[str], str | None],
    breakers: Sequence[BreakerState],
    prices: Mapping[str, Decimal | None] | None = None,
    stats: Mapping[str, ModelStats] | None = None,
) -> tuple[list[PreviewStep], str | None]:
    """What a request would try, in order, and why any model would be skipped.

    ``key_source(provider)`` says which key would pay ("own", "team", …) or None.
    Cost-optimised chains are ordered as the gateway would, with the scores as reason.
    """
    models = list(chain)
    reason: str | None = None
    if not options.auto_fallback:
        models = models[:1]
    elif options.cost_optimised and len(models) > 1:
        ordered, reason = routes.order_by_score(
            models,
            weights=options.weights,
            prices=prices or {},
            stats=stats or {},
            preference=options.preference_for(models),
        )
        models = list(ordered)
    open_deployments = {b.deployment for b in breakers if b.state == "open"}
    steps: list[PreviewStep] = []
    position = 0
    for model in models:
        try:
            target = resolver.resolve(model)
        except (NotFound, InvalidInput):
            steps.append(PreviewStep(model, None, None, "skipped: not a known model any more"))
            continue
        source = key_source(target.provider)
        if target.key_required and source is None:
            steps.append(
                PreviewStep(model, target.provider, None, f"skipped: no key for {target.provider}")
            )
            continue
        prefix = f"{target.model_id}@{source}:" if source else f"{target.model_id}@none"
        if any(d.startswith(prefix) for d in open_deployments):
            steps.append(
                PreviewStep(
                    model, target.provider, None, "skipped: circuit open, recent calls failed"
                )
            )
            continue
        position += 1
        paid = f"{source} key" if source else "no key needed"
        steps.append(PreviewStep(model, target.provider, position, f"tried ({paid})"))
    if not options.auto_fallback and len(chain) > 1:
        steps.extend(
            PreviewStep(m, None, None, "skipped: automatic fallback is off") for m in chain[1:]
        )
    return steps, reason


def blended_price(input_price: Decimal | None, output_price: Decimal | None) -> Decimal | None:
    """Three input tokens for every output token, as the gateway's cost ordering assumes."""
    if input_price is None or output_price is None:
        return None
    return (3 * input_price + output_price) / 4


_BADGES: Final = (("vision", "vision"), ("tools", "tools"), ("json_mode", "JSON"))


def model_label(model_id: str, catalog_get: Callable[[str], ModelInfo | None]) -> str:
    """One picker line: provider · name · tier · $in/$out per 1M · context · capabilities."""
    m = catalog_get(model_id)
    if m is None:
        return f"{model_id} · endpoint model · unpriced"
    price = (
        f"${m.input_price:.2f} / ${m.output_price:.2f} per 1M"
        if m.input_price is not None and m.output_price is not None
        else "unpriced"
    )
    context = f"{m.context_window // 1000}k ctx" if m.context_window else "ctx ?"
    badges = " ".join(f"[{label}]" for attr, label in _BADGES if getattr(m, attr))
    return f"{m.provider} · {m.name} · {m.cost_tier} · {price} · {context} {badges}".rstrip()


def picker_options(
    models: Sequence[ModelInfo],
    endpoint_models: Sequence[str],
    *,
    providers: Collection[str] | None,
    query: str = "",
) -> list[str]:
    """Model ids for a picker, grouped by provider (sorted), filtered by providers and text."""
    needle = query.strip().lower()
    ids = [m.id for m in models if providers is None or m.provider in providers]
    ids += [e for e in endpoint_models if providers is None or e.partition("/")[0] in providers]
    if needle:
        ids = [i for i in ids if needle in i.lower()]
    return sorted(dict.fromkeys(ids), key=lambda i: (i.partition("/")[0], i.lower()))
