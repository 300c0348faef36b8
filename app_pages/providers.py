"""Providers & keys: which key each provider would use for you, and your own keys."""

import streamlit as st

from core.accounts import keys
from core.clock import utc_now
from core.errors import SwitchboardError
from core.settings import endpoints, provider_status
from core.settings.profiles import KEY_CHOICE_LABELS
from ui import settings
from ui.resources import services
from ui.session import current_user

user = current_user()
svc = services()
me = settings.caller(svc, user.id)
profile = settings.current_profile(svc, user.id)
order = settings.key_order(profile)

st.title("Providers & keys")
settings.show_flash()
if profile is not None:
    st.caption(f"Profile **{profile.name}**: {KEY_CHOICE_LABELS[profile.keys_choice].lower()}.")
else:
    st.caption(
        "Requests use your own key first, then your team's, the organisation's, "
        "then the server's environment key."
    )

with svc.sessions() as session:
    listed = endpoints.list_endpoints(session)
    statuses = provider_status.provider_statuses(
        session,
        me,
        catalog_providers=svc.catalog.providers(),
        endpoints=listed,
        environ=svc.runtime.gateway.environ,
        breakers=svc.runtime.gateway.breaker_states(),
        sources=order,
    )
    own_keys = keys.list_keys(session, "user", user.id)


def _rows(items: list[provider_status.ProviderStatus]) -> list[dict[str, object]]:
    return [
        {
            "Provider": s.label,
            "Status": "available" if s.available else "unavailable",
            "Key used": s.key_words,
            "Circuit": s.breaker,
            "How to fix": s.fix or "",
            "Key page": s.key_url,
        }
        for s in items
    ]


link = {"Key page": st.column_config.LinkColumn("Key page", display_text="get a key")}
first = [s for s in statuses if (s.kind == "catalog" and s.env_var) or s.provider == "ollama"]
endpoint_rows = [s for s in statuses if s.kind == "endpoint"]
others = [s for s in statuses if s not in first and s not in endpoint_rows]
st.subheader("Status")
st.dataframe(_rows(first), hide_index=True, width="stretch", column_config=link)
missing = [s.label for s in first if not s.available]
if missing:
    st.warning(
        f"Unavailable for you: {', '.join(missing)}. Add a key below, or ask an admin "
        "for a team or organisation key."
    )
if endpoint_rows:
    st.markdown("**Endpoints defined by your admin**")
    st.dataframe(_rows(endpoint_rows), hide_index=True, width="stretch", column_config=link)
with st.expander(f"Other catalog providers ({len(others)})"):
    st.dataframe(_rows(others), hide_index=True, width="stretch", column_config=link)

st.subheader("Your own keys")
st.caption(
    "Keys are encrypted at rest and shown only masked. Your own key pays for your "
    "requests before any team or organisation key."
)
if not own_keys:
    st.info("You have no keys of your own yet. Add one below.")
for info in own_keys:
    with st.container(border=True):
        c1, c2, c3 = st.columns([3, 1, 1])
        c1.markdown(f"**{info.provider}** · `{info.masked}`")
        failed = (
            f" · last refused by the provider {settings.when(info.last_auth_failure_at)}"
            if info.last_auth_failure_at
            else ""
        )
        c1.caption(
            f"Saved {settings.when(info.updated_at)} · last used "
            f"{settings.when(info.last_used_at)}{failed}"
        )
        if c2.button("Test", key=f"test_{info.provider}"):
            settings.run_key_test(svc, me, info.provider, "own")
        with c3:

            def _delete(provider: str = info.provider) -> None:
                try:
                    with svc.sessions.begin() as session:
                        keys.delete_key(
                            session,
                            owner_kind="user",
                            owner_id=user.id,
                            provider=provider,
                            actor=user.username,
                            now=utc_now(),
                        )
                except SwitchboardError as exc:
                    st.error(exc.message)
                    return
                settings.routing_changed(svc)
                settings.flash(f"Deleted your {provider} key.")

            settings.confirm(
                f"key:user:{info.provider}",
                f"Delete your {info.provider} key {info.masked}? Your requests will use a "
                "team, organisation or environment key if there is one.",
                _delete,
                key=f"key_{info.provider}",
            )
        settings.show_key_test(info.provider, "own")

known = sorted(
    {*svc.catalog.providers(), *(e.name for e in listed if e.kind == "openai-compatible")}
)
firsts = [s.provider for s in first]
choices = [*firsts, *(p for p in known if p not in firsts)]
with st.form("add_key", clear_on_submit=True):
    st.markdown("**Add or replace a key**")
    c1, c2 = st.columns([1, 2])
    provider = c1.selectbox("Provider", choices, key="key_provider")
    secret = c2.text_input(
        "API key",
        type="password",
        key="key_secret",
        placeholder="paste the key; it is encrypted and never shown again",
    )
    anyway = st.checkbox("Save even if it looks wrong", key="key_anyway")
    submitted = st.form_submit_button("Save key", type="primary")
if submitted:
    warnings = keys.key_warnings(provider, secret) if secret.strip() else []
    if warnings and not anyway:
        for w in warnings:
            st.warning(w)
        st.info(
            "Not saved. Check the key, then paste it again, or tick “Save even if it looks wrong”."
        )
    else:
        try:
            with svc.sessions.begin() as session:
                saved = keys.set_key(
                    session,
                    svc.runtime.cipher,
                    owner_kind="user",
                    owner_id=user.id,
                    provider=provider,
                    secret=secret,
                    actor=user.username,
                    now=utc_now(),
                    known_providers=known,
                )
        except SwitchboardError as exc:
            st.error(exc.message)
        else:
            settings.routing_changed(svc)
            note = f" Note: {' '.join(warnings)}" if warnings else ""
            settings.flash(f"Saved your {saved.provider} key {saved.masked}.{note}")
