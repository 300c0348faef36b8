"""Model preferences: profiles, default model, fallback chain, provider order, per-task routes."""

from datetime import timedelta

import streamlit as st

from core.clock import utc_now
from core.compare import recommend
from core.errors import InvalidInput, SwitchboardError
from core.settings import endpoints, import_env, preferences, profiles, provider_status
from core.settings.profiles import KEY_CHOICE_LABELS
from core.settings.routes import MAX_CHAIN, RouteOptions
from core.store import ledger
from core.store.tables import KEY_CHOICES
from ui import route_fields, settings, state
from ui.resources import services
from ui.session import current_user

user = current_user()
svc = services()
me = settings.caller(svc, user.id)
profile = settings.current_profile(svc, user.id)
cat = svc.catalog
gw = svc.runtime.gateway
now = utc_now()

with svc.sessions() as session:
    my_profiles = profiles.list_profiles(session, user.id)
    saved = preferences.routes_for(session, user.id, profile)
    listed = endpoints.list_endpoints(session)
    statuses = provider_status.provider_statuses(
        session,
        me,
        catalog_providers=cat.providers(),
        endpoints=listed,
        environ=gw.environ,
        breakers=gw.breaker_states(),
        sources=settings.key_order(profile),
    )
    stats = ledger.recent_stats(session, now - timedelta(days=7))
    ratings = recommend.team_ratings(session, me.team_id)
resolver = gw.resolver()
usable = {s.provider: s.available for s in statuses}
source_of = {s.provider: s.key_source for s in statuses}
with_keys = [p for p, ok in usable.items() if ok]
keyed = [s.provider for s in statuses if s.key_source is not None]
where = f"profile **{profile.name}**" if profile else "your own settings (no profile)"

st.title("Model preferences")
settings.show_flash()
st.caption(f"Editing {where}. Switch profiles in the sidebar.")

# --- profiles ----------------------------------------------------------------------
with st.expander(f"Profiles ({len(my_profiles)})", expanded=not my_profiles):
    st.caption(
        "A profile keeps its own default model, routes and keys choice, e.g. "
        "Personal (your own keys) and Work (team keys). Each request records its profile."
    )
    if my_profiles:
        st.dataframe(
            [{"Profile": p.name, "Keys": KEY_CHOICE_LABELS[p.keys_choice]} for p in my_profiles],
            hide_index=True,
            width="stretch",
        )
    with st.form("new_profile", clear_on_submit=True):
        c1, c2 = st.columns(2)
        new_name = c1.text_input("New profile name", key="profile_name", placeholder="e.g. Work")
        new_choice = c2.selectbox(
            "Keys it uses",
            KEY_CHOICES,
            key="profile_keys",
            format_func=lambda c: KEY_CHOICE_LABELS[c],
        )
        if st.form_submit_button("Create profile"):
            try:
                with svc.sessions.begin() as session:
                    made = profiles.create_profile(
                        session,
                        user_id=user.id,
                        name=new_name,
                        keys_choice=new_choice,
                        actor=user.username,
                        now=utc_now(),
                    )
            except SwitchboardError as exc:
                st.error(exc.message)
            else:
                settings.routing_changed(svc)
                settings.flash(f"Created profile {made.name!r}. Pick it in the sidebar to edit it.")
    if profile is not None:
        st.markdown(f"**Profile {profile.name}**")
        c1, c2 = st.columns([2, 1])
        choice = c1.selectbox(
            "Keys this profile uses",
            KEY_CHOICES,
            index=KEY_CHOICES.index(profile.keys_choice),
            key="active_keys",
            format_func=lambda c: KEY_CHOICE_LABELS[c],
        )
        if c2.button("Save keys choice", key="save_keys_choice"):
            with svc.sessions.begin() as session:
                profiles.update_profile(
                    session,
                    user_id=user.id,
                    name=profile.name,
                    keys_choice=choice,
                    actor=user.username,
                    now=utc_now(),
                )
            settings.routing_changed(svc)
            settings.flash(f"Profile {profile.name!r} now uses: {KEY_CHOICE_LABELS[choice]}.")

        def _delete_profile(name: str = profile.name) -> None:
            with svc.sessions.begin() as session:
                profiles.delete_profile(
                    session, user_id=user.id, name=name, actor=user.username, now=utc_now()
                )
            st.session_state[state.ACTIVE_PROFILE] = None
            settings.routing_changed(svc)
            settings.flash(f"Deleted profile {name!r}.")

        settings.confirm(
            f"profile:{profile.name}",
            f"Delete profile {profile.name!r} and its routes? Requests made under "
            "it keep their recorded profile name.",
            _delete_profile,
            key="profile",
        )

# --- default model -----------------------------------------------------------------
default = saved.get("")
st.subheader("Default model")
c1, c2 = st.columns([2, 1])
query = c1.text_input("Search models", key="model_search", placeholder="e.g. haiku, gpt-4o")
only_keys = c2.toggle("Only providers I have keys for", value=bool(with_keys), key="only_keys")
allowed = with_keys if only_keys else None
options = preferences.picker_options(
    cat.models(), resolver.endpoint_models(), providers=allowed, query=query
)


def label(model_id: str) -> str:
    return preferences.model_label(model_id, cat.get)


if default and default.default_model not in options:
    options = [default.default_model, *options]
if not options:
    st.info("No model matches. Clear the search, or turn off the provider filter.")
else:
    index = options.index(default.default_model) if default else 0
    picked = st.selectbox(
        "Default model (grouped by provider; type to search)",
        options,
        index=index,
        format_func=label,
        key="default_model",
    )
    if default:
        st.caption(f"Saved: {label(default.default_model)}")
    if st.button("Save default model", type="primary", key="save_default"):
        try:
            with svc.sessions.begin() as session:
                chain = preferences.save_default_model(
                    session,
                    user_id=user.id,
                    profile=profile,
                    model=picked,
                    known_model=resolver.known,
                    actor=user.username,
                    now=utc_now(),
                )
        except SwitchboardError as exc:
            st.error(exc.message)
        else:
            settings.routing_changed(svc)
            st.session_state.pop(state.CHAIN_DRAFT, None)
            settings.flash(f"Default model saved: {chain[0]}.")

# --- fallback chain ----------------------------------------------------------------
st.subheader("Fallback chain")
draft_key = f"{profile.name if profile else ''}"
drafts = st.session_state.setdefault(state.CHAIN_DRAFT, {})
if draft_key not in drafts:
    drafts[draft_key] = list(default.models) if default else []
draft: list[str] = drafts[draft_key]
opts = default.options if default else RouteOptions()

if not draft:
    st.info("No chain yet. Save a default model above, or add models here.")
for i, model in enumerate(draft):
    c1, c2, c3, c4 = st.columns([6, 1, 1, 1])
    c1.markdown(f"{i + 1}. {label(model)}")
    if c2.button("↑", key=f"up_{i}", disabled=i == 0, help="Try earlier"):
        draft[i - 1], draft[i] = draft[i], draft[i - 1]
        st.rerun()
    if c3.button("↓", key=f"down_{i}", disabled=i == len(draft) - 1, help="Try later"):
        draft[i + 1], draft[i] = draft[i], draft[i + 1]
        st.rerun()
    if c4.button("✕", key=f"remove_{i}", help="Remove from the chain"):
        draft.pop(i)
        st.rerun()
addable = [
    m
    for m in preferences.picker_options(cat.models(), resolver.endpoint_models(), providers=allowed)
    if m not in draft
]
c1, c2 = st.columns([5, 1])
to_add = c1.selectbox(
    "Add a model",
    addable,
    index=None,
    format_func=label,
    key="chain_add",
    placeholder="choose a fallback model",
)
if c2.button("Add", key="chain_add_button", disabled=len(draft) >= MAX_CHAIN):
    if to_add is None:
        st.error("Choose a model to add first.")
    else:
        draft.append(to_add)
        st.rerun()

c1, c2 = st.columns(2)
auto = c1.toggle(
    "Automatic fallback",
    value=opts.auto_fallback,
    key="auto_fallback",
    help="Off: only the first model is tried.",
)
cost = c2.toggle(
    "Cost-optimised ordering",
    value=opts.cost_optimised,
    key="cost_optimised",
    help="Order by a score of price, latency, quality and your provider order.",
)
weights = route_fields.weight_fields(opts) if cost else opts.weights
# Only what this section edits changes; other saved options (provider order, ...) stay.
edited = RouteOptions.from_json(
    {
        **opts.to_json(),
        "auto_fallback": auto,
        "cost_optimised": cost,
        "weights": vars(weights),
        **route_fields.limit_fields(opts),
    }
)

prices = {}
for m in draft:
    info = cat.get(m)
    prices[m] = preferences.blended_price(info.input_price, info.output_price) if info else None
steps, reason = preferences.preview_chain(
    draft,
    edited,
    resolver=resolver,
    key_source=lambda p: source_of.get(p),
    breakers=gw.breaker_states(),
    prices=prices,
    stats=stats,
)
st.markdown("**Preview: what a request would try, in order**")
if steps:
    st.dataframe(
        [
            {"Order": str(s.position or "–"), "Model": s.model, "What happens": s.reason}
            for s in steps
        ],
        hide_index=True,
        width="stretch",
    )
    if reason:
        st.caption(reason)
else:
    st.caption("Nothing to try yet.")
c1, c2 = st.columns(2)
if c1.button("Save chain", type="primary", key="save_chain"):
    try:
        with svc.sessions.begin() as session:
            preferences.save_route(
                session,
                user_id=user.id,
                profile=profile,
                models=draft,
                known_model=resolver.known,
                actor=user.username,
                now=utc_now(),
                options=edited,
            )
    except SwitchboardError as exc:
        st.error(exc.message)
    else:
        settings.routing_changed(svc)
        settings.flash("Fallback chain saved.")
if c2.button("Discard changes", key="discard_chain"):
    drafts.pop(draft_key, None)
    st.rerun()

# --- provider order ----------------------------------------------------------------
st.subheader("Provider order preference")
st.caption(
    "Preferred providers, best first. Used by cost-optimised ordering. You can only "
    "prefer providers you have a usable key for."
)
picked_order = st.multiselect(
    "Preferred providers (in order of choice)",
    list(usable),
    default=[p for p in opts.provider_order if p in usable],
    key="provider_order",
)
if st.button("Save provider order", key="save_order"):
    try:
        preferences.save_provider_order(
            svc.sessions,
            caller=me,
            profile=profile,
            order=picked_order,
            usable=usable,
            actor=user.username,
            now=utc_now(),
        )
    except SwitchboardError as exc:
        st.error(exc.message)
    else:
        settings.routing_changed(svc)
        settings.flash("Provider order saved: " + (" > ".join(picked_order) or "none") + ".")

# --- per-task routes ---------------------------------------------------------------
st.subheader("Per-task routes")
tasks = list(dict.fromkeys([*preferences.DEFAULT_TASKS, *(t for t in saved if t)]))
rows = []
for task in tasks:
    found = saved.get(task)
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
existing = saved.get(task_name)
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
    st.caption(f"Recommended for {task_name or 'this task'}: **{recs[0].model}**. {recs[0].reason}")
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
            f"task:{task_name}", f"Remove the {task_name} route?", _remove_task, key="task_route"
        )

# --- import (admins) ---------------------------------------------------------------
if user.is_admin:
    st.subheader("Import an existing set-up")
    found_env = import_env.found_env_keys(gw.environ)
    st.caption(
        "Turns the server's environment keys and a default model into organisation "
        "defaults in one step (the same as `switchboard import-env`). Found: "
        + (", ".join(f"{p} ({v})" for p, v in found_env.items()) or "no provider keys")
        + "."
    )
    with st.form("import_env"):
        imp_model = st.text_input(
            "Default model for the organisation",
            key="import_model",
            placeholder="e.g. openai/gpt-4o-mini (empty: a cheap model)",
        )
        imp_replace = st.checkbox(
            "Replace existing organisation keys and default", key="import_replace"
        )
        if st.form_submit_button("Import"):
            try:
                with svc.sessions.begin() as session:
                    result = import_env.import_env(
                        session,
                        svc.runtime.cipher,
                        gw.environ,
                        catalog=cat,
                        known_model=resolver.known,
                        known_providers={*cat.providers(), *(e.name for e in listed)},
                        actor=user.username,
                        now=utc_now(),
                        model=imp_model or None,
                        replace=imp_replace,
                    )
            except SwitchboardError as exc:
                st.error(exc.message)
            else:
                settings.routing_changed(svc)
                settings.flash(" ".join(result.lines()) or "Nothing to import.")
