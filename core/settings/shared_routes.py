"""Organisation and team routes as admins edit them: listing, describing and saving.

Users edit their own routes through core.settings.preferences; these routes apply to everyone
in a team, or in the organisation, who has no route of their own for the task.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import InvalidInput
from core.settings import routes
from core.settings.routes import RouteOptions
from core.store.tables import ORG_OWNER_ID, RouteRow

ORG = "org"
TEAM = "team"


@dataclass(frozen=True)
class SharedRoute:
    scope: str  # org | team
    scope_id: int
    owner: str  # "Organisation" or "Team <name>"
    task: str  # "" is the default route
    models: tuple[str, ...]
    options: RouteOptions
    updated_at: datetime
    updated_by: str


def owner_label(scope: str, scope_id: int, team_names: Mapping[int, str]) -> str:
    return "Organisation" if scope == ORG else f"Team {team_names.get(scope_id, scope_id)}"


def list_shared_routes(session: Session, team_names: Mapping[int, str]) -> list[SharedRoute]:
    """Every organisation route, then each team's, default route first within each."""
    rows = session.scalars(select(RouteRow).where(RouteRow.scope.in_((ORG, TEAM))))
    found = [
        SharedRoute(
            r.scope,
            r.scope_id,
            owner_label(r.scope, r.scope_id, team_names),
            r.task,
            tuple(r.models),
            RouteOptions.from_json(r.options),
            r.updated_at,
            r.updated_by,
        )
        for r in rows
    ]
    return sorted(found, key=lambda r: (r.scope != ORG, r.owner, r.task))


def describe_options(options: RouteOptions) -> str:
    """What differs from the defaults, in words ("defaults" when nothing does)."""
    changed = options.changed()
    parts: list[str] = []
    if "auto_fallback" in changed:
        parts.append("first model only")
    if "cost_optimised" in changed:
        parts.append("cost-optimised order")
    if "content_refusal_failover" in changed:
        parts.append("fails over on content refusals")
    if "drop_params" in changed:
        parts.append("drops fields a model does not take")
    if "max_retries" in changed:
        n = options.max_retries
        parts.append(f"{n} {'retry' if n == 1 else 'retries'} per model")
    parts += [
        f"{words} {changed[name]:g} s"
        for name, words in routes.TIMEOUT_NAMES.items()
        if name in changed
    ]
    if "temperature" in changed:
        parts.append(f"temperature {options.temperature:g}")
    if "max_tokens" in changed:
        parts.append(f"max tokens {options.max_tokens:,}")
    if "weights" in changed:
        w = options.weights
        parts.append(
            f"weights price {w.price:g}, latency {w.latency:g}, quality {w.quality:g}, "
            f"preference {w.preference:g}"
        )
    if "provider_order" in changed:
        parts.append("prefers " + " > ".join(options.provider_order))
    return ", ".join(parts) or "defaults"


def save_shared_route(
    session: Session,
    *,
    scope: str,
    scope_id: int,
    task: str,
    models: Sequence[str],
    options: RouteOptions,
    known_model: Callable[[str], bool],
    actor: str,
    now: datetime,
) -> None:
    """Create or replace an organisation or team route (validated, audited)."""
    if scope not in (ORG, TEAM):
        raise InvalidInput(
            "Admins set organisation and team routes here; users set their "
            "own on Model preferences."
        )
    routes.set_route(
        session,
        scope=scope,
        scope_id=ORG_OWNER_ID if scope == ORG else scope_id,
        task=task,
        models=models,
        known_model=known_model,
        options=options,
        actor=actor,
        now=now,
    )
