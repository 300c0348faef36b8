"""Admins: import the server's environment keys and a default model as organisation defaults."""

from __future__ import annotations

import streamlit as st

from core.clock import utc_now
from core.errors import SwitchboardError
from core.settings import import_env
from ui import settings
from ui.preferences_data import PreferencesData


def import_section(page: PreferencesData) -> None:
    """The same as `switchboard import-env`, as a form."""
    svc, user, resolver, listed = page.svc, page.user, page.resolver, page.listed
    cat, gw = svc.catalog, svc.runtime.gateway
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
