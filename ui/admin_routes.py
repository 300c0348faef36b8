"""Admin > Routes: organisation and team routes, with the same options users have."""

from __future__ import annotations

import streamlit as st

from core.clock import utc_now
from core.errors import InvalidInput, SwitchboardError
from core.settings import preferences, routes, shared_routes
from core.settings.routes import RouteOptions
from core.settings.shared_routes import ORG, TEAM
from core.store.tables import ORG_OWNER_ID
from ui import route_fields, settings
from ui.resources import Services

ANOTHER_TASK = "another task…"
DEFAULT_TASK = "(default: every task)"


def render(svc: Services, actor: str, teams: list[tuple[int, str]]) -> None:
    cat = svc.catalog
    resolver = svc.runtime.gateway.resolver()
    team_names = dict(teams)
    with svc.sessions() as session:
        saved = shared_routes.list_shared_routes(session, team_names)
    st.caption(
        "A request uses the first route that applies: its own `fallbacks`, then a "
        "route for its task (the user's, their team's, the organisation's), then the "
        "user's default, the team's default, the organisation's default. Users set "
        "their own on Model preferences; these apply to everyone else."
    )
    if saved:
        st.dataframe(
            [
                {
                    "For": r.owner,
                    "Task": r.task or "(default)",
                    "Chain": " → ".join(r.models),
                    "Options": shared_routes.describe_options(r.options),
                    "Changed": f"{settings.when(r.updated_at)} by {r.updated_by}",
                }
                for r in saved
            ],
            hide_index=True,
            width="stretch",
        )
    else:
        st.info(
            "No organisation or team routes yet. Without a route, a request must name "
            "its model. Set the organisation default below."
        )

    owners = {
        "Organisation": (ORG, ORG_OWNER_ID),
        **{f"Team {name}": (TEAM, team_id) for team_id, name in teams},
    }
    c1, c2, c3 = st.columns([2, 2, 2])
    owner = c1.selectbox("Route for", list(owners), key="sr_owner")
    scope, scope_id = owners[owner]
    known_tasks = [r.task for r in saved if r.task]
    tasks = [DEFAULT_TASK, *dict.fromkeys([*preferences.DEFAULT_TASKS, *known_tasks]), ANOTHER_TASK]
    task_pick = c2.selectbox("Task", tasks, key="sr_task")
    custom = c3.text_input(
        "Task name",
        key="sr_task_custom",
        disabled=task_pick != ANOTHER_TASK,
        placeholder="e.g. poetry",
    )
    task = (
        ("" if task_pick == DEFAULT_TASK else custom if task_pick == ANOTHER_TASK else task_pick)
        .strip()
        .lower()
    )
    existing = next(
        (r for r in saved if (r.scope, r.scope_id, r.task) == (scope, scope_id, task)), None
    )
    opts = existing.options if existing else RouteOptions()
    form = f"{scope}_{scope_id}_{task}"  # fresh widgets per route, filled from what is saved

    def label(model_id: str) -> str:
        return preferences.model_label(model_id, cat.get)

    choices = preferences.picker_options(cat.models(), resolver.endpoint_models(), providers=None)
    model, fallbacks = route_fields.chain_fields(
        choices, existing.models if existing else (), label, prefix="sr", suffix=form
    )
    c1, c2 = st.columns(2)
    auto = c1.toggle(
        "Automatic fallback",
        value=opts.auto_fallback,
        key=f"sr_auto_{form}",
        help="Off: only the first model is tried.",
    )
    cost = c2.toggle(
        "Cost-optimised ordering",
        value=opts.cost_optimised,
        key=f"sr_cost_{form}",
        help="Order by a score of price, latency, quality and provider order.",
    )
    weights, order = opts.weights, list(opts.provider_order)
    if cost:
        weights = route_fields.weight_fields(opts, prefix=f"sr_{form}_")
        providers = resolver.providers()
        order = st.multiselect(
            "Preferred providers, best first",
            providers,
            default=[p for p in opts.provider_order if p in providers],
            key=f"sr_{form}_provider_order",
            help="The preference part of the score. Empty: no provider is preferred.",
        )
    limits = route_fields.limit_fields(opts, prefix=f"sr_{form}_")
    what = f"the {task} route" if task else "the default route"

    c1, c2 = st.columns(2)
    if c1.button("Save route", type="primary", key="sr_save"):
        try:
            if task_pick == ANOTHER_TASK and not task:
                raise InvalidInput("Type a task name first.")
            if model is None:
                raise InvalidInput("Choose a model for this route.")
            # Merge: options set elsewhere (temperature, max tokens) are kept.
            options = RouteOptions.from_json(
                {
                    **opts.to_json(),
                    "auto_fallback": auto,
                    "cost_optimised": cost,
                    "weights": vars(weights),
                    "provider_order": order,
                    **limits,
                }
            )
            with svc.sessions.begin() as session:
                shared_routes.save_shared_route(
                    session,
                    scope=scope,
                    scope_id=scope_id,
                    task=task,
                    models=[model, *fallbacks],
                    options=options,
                    known_model=resolver.known,
                    actor=actor,
                    now=utc_now(),
                )
        except SwitchboardError as exc:
            st.error(exc.message)
        else:
            settings.routing_changed(svc)
            settings.flash(f"Saved {what} for {owner}: {' → '.join([model, *fallbacks])}.")
    if existing is not None:
        with c2:

            def _remove() -> None:
                with svc.sessions.begin() as session:
                    routes.delete_route(
                        session,
                        scope=scope,
                        scope_id=scope_id,
                        task=task,
                        actor=actor,
                        now=utc_now(),
                    )
                settings.routing_changed(svc)
                settings.flash(f"Removed {what} for {owner}.")

            settings.confirm(
                f"route:{form}",
                f"Remove {what} for {owner}? Requests it served "
                "fall back to the next route that applies.",
                _remove,
                key="shared_route",
                label="Remove",
            )
