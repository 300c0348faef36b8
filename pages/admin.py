"""Admin: organisation and team keys and routes, endpoints, budgets, prices, the audit log."""

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

import streamlit as st

from core.accounts import auth, keys
from core.clock import utc_now
from core.errors import InvalidInput, SwitchboardError
from core.money import budgets, pricing, spend
from core.money.budgets import usd
from core.request import MICROS_PER_USD, Caller
from core.settings import endpoints
from core.store import audit
from core.store.tables import ORG_OWNER_ID
from ui import admin_routes, settings
from ui.resources import services
from ui.session import require_role

admin = require_role("admin")
svc = services()
me = settings.caller(svc, admin.id)
cat = svc.catalog
gw = svc.runtime.gateway
resolver = gw.resolver()

st.title("Admin")
settings.show_flash()
with svc.sessions() as session:
    teams = auth.list_teams(session)
    users = auth.list_users(session)
    listed = endpoints.list_endpoints(session)
    shared_keys = keys.list_keys(session, "org", ORG_OWNER_ID) + [
        k for team_id, _ in teams for k in keys.list_keys(session, "team", team_id)
    ]
team_names = dict(teams)
known = {*cat.providers(), *(e.name for e in listed if e.kind == "openai-compatible")}


def owner_label(kind: str, owner_id: int) -> str:
    return "Organisation" if kind == "org" else f"Team {team_names.get(owner_id, owner_id)}"


def parse_usd(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text.strip().lstrip("$").replace(",", ""))
    except InvalidOperation:
        raise InvalidInput(
            f"{what} {text!r} is not an amount; type dollars such as 25 or 2.50."
        ) from None
    if not value.is_finite():
        raise InvalidInput(f"{what} must be a finite amount of dollars.")
    return value


keys_tab, routes_tab, endpoints_tab, budgets_tab, prices_tab, audit_tab = st.tabs(
    ["Organisation & team keys", "Routes", "Endpoints", "Budgets", "Prices", "Audit log"]
)

# --- keys ------------------------------------------------------------------------------
with keys_tab:
    st.caption(
        "Team keys pay for their team's requests when a member has no key of their "
        "own; the organisation's key pays for everyone else. Shown masked only."
    )
    if shared_keys:
        st.dataframe(
            [
                {
                    "Owner": owner_label(k.owner_kind, k.owner_id),
                    "Provider": k.provider,
                    "Key": k.masked,
                    "Last used": settings.when(k.last_used_at),
                    "Last refused": settings.when(k.last_auth_failure_at)
                    if k.last_auth_failure_at
                    else "",
                }
                for k in shared_keys
            ],
            hide_index=True,
            width="stretch",
        )
        labels = {
            f"{owner_label(k.owner_kind, k.owner_id)} · {k.provider} · {k.masked}": k
            for k in shared_keys
        }
        c1, c2, c3 = st.columns([4, 1, 1])
        chosen = labels[c1.selectbox("Key", list(labels), key="shared_key_pick")]
        if c2.button("Test", key="test_shared"):
            team = chosen.owner_id if chosen.owner_kind == "team" else me.team_id
            # A team key answers only for its team: test it as a member of that team.
            who = Caller(me.user_id, me.username, me.role, team)
            source = "team" if chosen.owner_kind == "team" else "org"
            settings.run_key_test(svc, who, chosen.provider, source)
        with c3:

            def _delete_shared(k: keys.KeyInfo = chosen) -> None:
                with svc.sessions.begin() as session:
                    keys.delete_key(
                        session,
                        owner_kind=k.owner_kind,
                        owner_id=k.owner_id,
                        provider=k.provider,
                        actor=admin.username,
                        now=utc_now(),
                    )
                settings.routing_changed(svc)
                settings.flash(
                    f"Deleted {owner_label(k.owner_kind, k.owner_id)}'s {k.provider} key."
                )

            settings.confirm(
                f"key:{chosen.owner_kind}:{chosen.owner_id}:{chosen.provider}",
                f"Delete {owner_label(chosen.owner_kind, chosen.owner_id)}'s "
                f"{chosen.provider} key {chosen.masked}?",
                _delete_shared,
                key="shared_key",
            )
        settings.show_key_test(chosen.provider, "team" if chosen.owner_kind == "team" else "org")
    else:
        st.info("No organisation or team keys yet.")
    owners = [("org", ORG_OWNER_ID), *(("team", i) for i, _ in teams)]
    with st.form("add_shared_key", clear_on_submit=True):
        st.markdown("**Add or replace a key**")
        c1, c2, c3 = st.columns([1, 1, 2])
        owner = c1.selectbox(
            "Owner", owners, format_func=lambda o: owner_label(*o), key="shared_owner"
        )
        provider = c2.selectbox("Provider", sorted(known), key="shared_provider")
        secret = c3.text_input("API key", type="password", key="shared_secret")
        anyway = st.checkbox("Save even if it looks wrong", key="shared_anyway")
        if st.form_submit_button("Save key", type="primary"):
            warnings = keys.key_warnings(provider, secret) if secret.strip() else []
            if warnings and not anyway:
                for w in warnings:
                    st.warning(w)
                st.info("Not saved. Paste the key again, or tick “Save even if it looks wrong”.")
            else:
                try:
                    with svc.sessions.begin() as session:
                        saved = keys.set_key(
                            session,
                            svc.runtime.cipher,
                            owner_kind=owner[0],
                            owner_id=owner[1],
                            provider=provider,
                            secret=secret,
                            actor=admin.username,
                            now=utc_now(),
                            known_providers=known,
                        )
                except SwitchboardError as exc:
                    st.error(exc.message)
                else:
                    settings.routing_changed(svc)
                    settings.flash(
                        f"Saved {owner_label(*owner)}'s {saved.provider} key {saved.masked}."
                    )

# --- organisation and team routes ------------------------------------------------------
with routes_tab:
    admin_routes.render(svc, admin.username, teams)

# --- endpoints ---------------------------------------------------------------------------
with endpoints_tab:
    st.caption(
        "OpenAI-compatible servers (vLLM, LM Studio, a company proxy). Their models are "
        "called as <name>/<model>. An override sends a built-in provider elsewhere."
    )
    if listed:
        st.dataframe(
            [
                {
                    "Name": e.name,
                    "Type": e.kind,
                    "Base URL": e.api_base,
                    "Models": ", ".join(e.models) or "(catalog's)",
                    "Prefill": e.supports_prefill,
                }
                for e in listed
            ],
            hide_index=True,
            width="stretch",
        )
    names = [e.name for e in listed]
    editing = st.selectbox("Endpoint", ["New endpoint", *names], key="endpoint_pick")
    current = next((e for e in listed if e.name == editing), None)
    with st.form("endpoint"):
        c1, c2 = st.columns(2)
        name = c1.text_input(
            "Name",
            value=current.name if current else "",
            key="ep_name",
            disabled=current is not None,
            placeholder="e.g. corp-vllm",
        )
        kind = c2.selectbox(
            "Type",
            endpoints.ENDPOINT_KINDS,
            key="ep_kind",
            index=endpoints.ENDPOINT_KINDS.index(current.kind) if current else 0,
        )
        base = st.text_input(
            "Base URL",
            value=current.api_base if current else "",
            key="ep_base",
            placeholder="https://llm.example.com/v1",
        )
        models_text = st.text_input(
            "Models (comma-separated)",
            key="ep_models",
            value=", ".join(current.models) if current else "",
        )
        prefill = st.checkbox(
            "Supports assistant prefill",
            key="ep_prefill",
            value=current.supports_prefill if current else False,
        )
        if st.form_submit_button("Save endpoint", type="primary"):
            model_list = [m for m in models_text.split(",") if m.strip()]
            try:
                with svc.sessions.begin() as session:
                    save = endpoints.update_endpoint if current else endpoints.add_endpoint
                    info = save(
                        session,
                        name=current.name if current else name,
                        kind=kind,
                        api_base=base,
                        models=model_list,
                        supports_prefill=prefill,
                        actor=admin.username,
                        now=utc_now(),
                        builtin_providers=cat.providers(),
                    )
            except SwitchboardError as exc:
                st.error(exc.message)
            else:
                settings.routing_changed(svc)
                settings.flash(f"Saved endpoint {info.name!r}.")
    if current is not None:
        c1, c2 = st.columns(2)
        if c1.button("Test endpoint", key="test_endpoint"):
            settings.run_key_test(svc, me, current.name, None)
        with c2:

            def _delete_endpoint(ep: str = current.name) -> None:
                with svc.sessions.begin() as session:
                    endpoints.delete_endpoint(session, name=ep, actor=admin.username, now=utc_now())
                settings.routing_changed(svc)
                settings.flash(f"Deleted endpoint {ep!r}.")

            settings.confirm(
                f"endpoint:{current.name}",
                f"Delete endpoint {current.name!r}? Its keys are deleted too, and "
                "routes naming its models will skip them.",
                _delete_endpoint,
                key="endpoint",
            )
        settings.show_key_test(current.name, None)

# --- budgets -------------------------------------------------------------------------------
with budgets_tab:
    with svc.sessions() as session:
        all_budgets = budgets.list_budgets(session, utc_now())
    if all_budgets:
        st.dataframe(
            [
                {
                    "Budget": b.label,
                    "Limit": usd(b.limit_micros),
                    "Spent": usd(b.spent_micros),
                    "Held (in progress)": usd(b.reserved_micros),
                    "Left": usd(b.remaining_micros),
                    "Kind": "hard" if b.hard else "soft",
                    "Resets": b.resets_on.isoformat(),
                }
                for b in all_budgets
            ],
            hide_index=True,
            width="stretch",
        )
    else:
        st.info("No budgets yet. Without one, spending is unlimited.")
    scope = st.radio(
        "Budget for", ["user", "team", "provider"], horizontal=True, key="budget_scope"
    )
    targets: dict[str, str] = (
        {u.username: str(u.id) for u in users}
        if scope == "user"
        else {n: str(i) for i, n in teams}
        if scope == "team"
        else {p: p for p in sorted(known)}
    )
    with st.form("budget"):
        c1, c2, c3 = st.columns([2, 1, 1])
        target = c1.selectbox("Who or what", list(targets), key="budget_target")
        limit_text = c2.text_input("Monthly limit (USD)", key="budget_limit", placeholder="50")
        hard = c3.toggle("Hard (refuse requests)", value=True, key="budget_hard")
        if st.form_submit_button("Save budget", type="primary"):
            try:
                if target is None:
                    raise InvalidInput(f"There is no {scope} to budget for yet.")
                amount = parse_usd(limit_text, "The limit")
                if amount < 0:
                    raise InvalidInput("A budget cannot be negative; type zero or more dollars.")
                micros = int((amount * MICROS_PER_USD).to_integral_value())
                with svc.sessions.begin() as session:
                    info = budgets.set_budget(
                        session, scope, targets[target], micros, hard, admin.username, utc_now()
                    )
            except SwitchboardError as exc:
                st.error(exc.message)
            else:
                settings.routing_changed(svc)
                settings.flash(
                    f"Budget for {info.label}: {usd(info.limit_micros)} a month "
                    f"({'hard' if info.hard else 'soft'})."
                )

# --- prices ----------------------------------------------------------------------------------
with prices_tab:
    now = utc_now()
    with svc.sessions() as session:
        overrides = pricing.list_overrides(session)
        unpriced = spend.unpriced_in_use(session, now - timedelta(days=30))
    if unpriced:
        st.warning("Unpriced models in use (last 30 days); their cost is unknown until priced:")
        st.dataframe(
            [
                {"Model": u.model, "Requests": u.requests, "Last used": settings.when(u.last_used)}
                for u in unpriced
            ],
            hide_index=True,
            width="stretch",
        )
    if overrides:
        rows = []
        for o in overrides:
            info = cat.get(o.model_id)
            rows.append(
                {
                    "Model": o.model_id,
                    "From": settings.when(o.effective_from),
                    "Input $/1M": str(o.input_per_1m),
                    "Output $/1M": str(o.output_per_1m),
                    "Catalog input $/1M": str(info.input_price)
                    if info and info.input_price is not None
                    else "unpriced",
                    "Catalog output $/1M": str(info.output_price)
                    if info and info.output_price is not None
                    else "unpriced",
                    "By": o.created_by,
                }
            )
        st.dataframe(rows, hide_index=True, width="stretch")
    with st.form("price"):
        model_id = st.text_input(
            "Model id",
            key="price_model",
            value=unpriced[0].model if unpriced else "",
            placeholder="e.g. openai/gpt-4o or corp-vllm/llama3",
        )
        info = cat.get(model_id.strip()) if model_id.strip() else None
        if info is not None:
            st.caption(
                f"Catalog price: ${info.input_price} in / ${info.output_price} out per 1M tokens."
                if info.priced
                else "The catalog has no price for this model."
            )
        c1, c2, c3 = st.columns(3)
        in_text = c1.text_input("Input $ per 1M tokens", key="price_in")
        out_text = c2.text_input("Output $ per 1M tokens", key="price_out")
        day = c3.date_input("From (UTC)", value=now.date(), min_value=now.date(), key="price_from")
        if st.form_submit_button("Save price", type="primary"):
            try:
                start = (
                    now.replace(microsecond=0)
                    if day == now.date()
                    else datetime.combine(day, time.min, tzinfo=UTC)
                )
                with svc.sessions.begin() as session:
                    saved = pricing.set_price_override(
                        session,
                        model_id,
                        parse_usd(in_text, "The input price"),
                        parse_usd(out_text, "The output price"),
                        start,
                        admin.username,
                        utc_now(),
                        resolver.known,
                    )
            except SwitchboardError as exc:
                st.error(exc.message)
            else:
                settings.routing_changed(svc)
                settings.flash(
                    f"Price for {saved.model_id} from "
                    f"{settings.when(saved.effective_from)}: ${saved.input_per_1m} in, "
                    f"${saved.output_per_1m} out per 1M tokens."
                )

# --- audit -----------------------------------------------------------------------------------
with audit_tab:
    c1, c2, c3 = st.columns(3)
    actor = c1.text_input("Who", key="audit_actor", placeholder="username or cli")
    action = c2.text_input("Action", key="audit_action", placeholder="e.g. key.set")
    since = c3.date_input("Since", value=utc_now().date() - timedelta(days=30), key="audit_since")
    with svc.sessions() as session:
        entries = audit.recent(
            session,
            limit=500,
            actor=actor.strip() or None,
            action=action.strip() or None,
            since=datetime.combine(since, time.min, tzinfo=UTC),
        )
    if entries:
        st.dataframe(
            [
                {
                    "When": settings.when(e.at),
                    "Who": e.actor,
                    "Action": e.action,
                    "Target": e.target,
                    "Details": ", ".join(f"{k}={v}" for k, v in e.details.items()),
                }
                for e in entries
            ],
            hide_index=True,
            width="stretch",
        )
        st.caption(f"{len(entries)} entries, newest first (at most 500).")
    else:
        st.info("No audit entries match these filters.")
