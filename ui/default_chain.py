"""The default model, the fallback chain (with its live preview) and the provider order."""

from __future__ import annotations

import streamlit as st

from core.clock import utc_now
from core.errors import SwitchboardError
from core.settings import preferences
from core.settings.preferences import RouteSetting
from core.settings.routes import MAX_CHAIN, ROUTE_SOURCE_WORDS, RouteOptions
from ui import route_fields, settings, state
from ui.preferences_data import PreferencesData


def default_model_section(page: PreferencesData) -> list[str] | None:
    """Pick and save the default model; returns the providers the pickers are limited to."""
    svc, user, profile, resolver = page.svc, page.user, page.profile, page.resolver
    cat, label, with_keys = svc.catalog, page.label, page.with_keys
    default = page.saved.get("")
    in_force = page.in_force
    st.subheader("Default model")
    if default is None and in_force is not None:
        st.info(
            f"You have no default model of your own{' in this profile' if profile else ''}. "
            f"Today your requests use {ROUTE_SOURCE_WORDS[in_force.source]}: "
            f"{' → '.join(in_force.chain)}. The pickers below start from it; saving here "
            "makes a route of your own."
        )
    elif default is None:
        st.warning(
            "No route applies to you yet, so a request that names no model is refused. "
            "Pick a default model and save it."
        )
    # Start from what is in force today, never from the alphabetically first model.
    start = default.default_model if default else (in_force.chain[0] if in_force else None)
    c1, c2 = st.columns([2, 1])
    query = c1.text_input("Search models", key="model_search", placeholder="e.g. haiku, gpt-4o")
    only_keys = c2.toggle("Only providers I have keys for", value=bool(with_keys), key="only_keys")
    allowed = with_keys if only_keys else None
    options = preferences.picker_options(
        cat.models(), resolver.endpoint_models(), providers=allowed, query=query
    )

    if start and start not in options and not query:
        options = [start, *options]
    if not options:
        st.info("No model matches. Clear the search, or turn off the provider filter.")
    else:
        index = options.index(start) if start in options else 0
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
    return allowed


@st.fragment
def fallback_chain_section(page: PreferencesData, allowed: list[str] | None) -> None:
    """Edit the chain as a draft (reorder, add, remove), preview it, then save or discard.

    A fragment: adding, moving or removing a model reruns this section only, not the
    whole page (its other sections read the ledger and the votes). Saving reruns the
    page, which shows the saved chain everywhere.
    """
    svc, user, profile, resolver = page.svc, page.user, page.profile, page.resolver
    cat, label, gw = svc.catalog, page.label, svc.runtime.gateway
    # Nothing saved here yet: start from the route in force (team's, organisation's, ...).
    base = page.saved.get("") or page.in_force
    st.subheader("Fallback chain")
    draft_key = f"{profile.name if profile else ''}"
    drafts = st.session_state.setdefault(state.CHAIN_DRAFT, {})
    if draft_key not in drafts:
        drafts[draft_key] = (
            list(base.models if isinstance(base, RouteSetting) else base.chain) if base else []
        )
    draft: list[str] = drafts[draft_key]
    opts = base.options if base else RouteOptions()

    if not draft:
        st.info("No chain applies to you yet. Save a default model above, or add models here.")
    for i, model in enumerate(draft):
        c1, c2, c3, c4 = st.columns([6, 1, 1, 1])
        c1.markdown(f"{i + 1}. {label(model)}")
        if c2.button("↑", key=f"up_{i}", disabled=i == 0, help="Try earlier"):
            draft[i - 1], draft[i] = draft[i], draft[i - 1]
            settings.rerun_section()
        if c3.button("↓", key=f"down_{i}", disabled=i == len(draft) - 1, help="Try later"):
            draft[i + 1], draft[i] = draft[i], draft[i + 1]
            settings.rerun_section()
        if c4.button("✕", key=f"remove_{i}", help="Remove from the chain"):
            draft.pop(i)
            settings.rerun_section()
    addable = [
        m
        for m in preferences.picker_options(
            cat.models(), resolver.endpoint_models(), providers=allowed
        )
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
            settings.rerun_section()

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
        key_source=page.key_source,
        breakers=gw.breaker_states(),
        prices=prices,
        stats=page.stats,
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
        settings.rerun_section()


def provider_order_section(page: PreferencesData) -> None:
    """Preferred providers, best first, among those with a usable key."""
    svc, user, profile, usable, me = page.svc, page.user, page.profile, page.usable, page.me
    default = page.saved.get("")
    opts = default.options if default else RouteOptions()
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
