"""Per-task routes in Model preferences: the table with recommendations, and one task's editor."""

from __future__ import annotations

import streamlit as st

from core.clock import utc_now
from core.compare import recommend
from core.errors import InvalidInput, SwitchboardError
from core.settings import preferences
from core.settings.routes import RouteOptions
from ui import route_fields, settings
from ui.preferences_data import PreferencesData


def task_routes_section(page: PreferencesData, allowed: list[str] | None) -> None:
    """Each task's chain and its recommended model; edit, save or remove one task's route."""
    svc, user, profile, resolver = page.svc, page.user, page.profile, page.resolver
    cat, label, stats, ratings, keyed = (
        svc.catalog,
        page.label,
        page.stats,
        page.ratings,
        page.keyed,
    )
    st.subheader("Per-task routes")
    tasks = list(dict.fromkeys([*preferences.DEFAULT_TASKS, *(t for t in page.saved if t)]))
    rows = []
    for task in tasks:
        found = page.saved.get(task)
        recs = recommend.recommend(
            task, cat.models(), stats=stats, ratings=ratings.for_task(task), providers=keyed or None
        )
        rows.append(
            {
                "Task": task,
                "Chain": " → ".join(found.models) if found else "(default chain)",
                "Temperature": found.options.temperature if found else None,
                "Max tokens": found.options.max_tokens if found else None,
                "Recommended": recs[0].model if recs else "–",
                "Why": recs[0].reason if recs else "No model with a key fits this task yet.",
            }
        )
    st.dataframe(rows, hide_index=True, width="stretch")

    c1, c2 = st.columns(2)
    task_pick = c1.selectbox("Task", [*tasks, "another task…"], key="task_pick")
    custom = c2.text_input(
        "Task name",
        key="task_custom",
        disabled=task_pick != "another task…",
        placeholder="your own task name, e.g. poetry",
    )
    task_name = (custom if task_pick == "another task…" else task_pick).strip().lower()
    existing = page.saved.get(task_name)
    recs = recommend.recommend(
        task_name or "chat",
        cat.models(),
        stats=stats,
        ratings=ratings.for_task(task_name or "chat"),
        providers=keyed or None,
    )
    all_options = preferences.picker_options(
        cat.models(), resolver.endpoint_models(), providers=allowed
    )
    if recs:
        st.caption(
            f"Recommended for {task_name or 'this task'}: **{recs[0].model}**. {recs[0].reason}"
        )
    t_model, t_fallbacks = route_fields.chain_fields(
        all_options,
        existing.models if existing else (),
        label,
        prefix="task",
        suffix=task_name,
        start=recs[0].model if recs else None,
    )
    c1, c2 = st.columns(2)
    t_temp_text = c1.text_input(
        "Temperature (0-2, empty: model default)",
        key=f"task_t_{task_name}",
        value=""
        if not existing or existing.options.temperature is None
        else str(existing.options.temperature),
    )
    t_max = c2.number_input(
        "Max tokens (0: model default)",
        min_value=0,
        step=256,
        value=existing.options.max_tokens or 0 if existing else 0,
        key=f"task_max_{task_name}",
    )
    task_base = existing.options if existing else RouteOptions()
    task_limits = route_fields.limit_fields(task_base, prefix=f"task_{task_name}_")
    c1, c2 = st.columns(2)
    if c1.button("Save task route", type="primary", key="save_task"):
        try:
            if not task_name:
                raise InvalidInput("Type a task name first.")
            if t_model is None:
                raise InvalidInput("Choose a model for this task.")
            try:
                temperature = float(t_temp_text) if t_temp_text.strip() else None
            except ValueError:
                raise InvalidInput(
                    f"Temperature {t_temp_text!r} is not a number; use 0 to 2, or leave it empty."
                ) from None
            task_opts = RouteOptions.from_json(
                {
                    **task_base.to_json(),
                    **task_limits,
                    "temperature": temperature,
                    "max_tokens": int(t_max) or None,
                }
            )
            with svc.sessions.begin() as session:
                preferences.save_route(
                    session,
                    user_id=user.id,
                    profile=profile,
                    task=task_name,
                    models=[t_model, *t_fallbacks],
                    known_model=resolver.known,
                    actor=user.username,
                    now=utc_now(),
                    options=task_opts,
                )
        except SwitchboardError as exc:
            st.error(exc.message)
        else:
            settings.routing_changed(svc)
            settings.flash(f"Saved the route for {task_name}.")
    if existing is not None:
        with c2:

            def _remove_task(task: str = task_name) -> None:
                with svc.sessions.begin() as session:
                    preferences.remove_route(
                        session,
                        user_id=user.id,
                        profile=profile,
                        task=task,
                        actor=user.username,
                        now=utc_now(),
                    )
                settings.routing_changed(svc)
                settings.flash(f"Removed the route for {task}; it uses the default chain again.")

            settings.confirm(
                f"task:{task_name}",
                f"Remove the {task_name} route?",
                _remove_task,
                key="task_route",
            )
