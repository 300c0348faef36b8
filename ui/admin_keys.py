"""Admin > Organisation & team keys: the shared keys, masked, with Test and Delete, and a form
to add or replace one."""

from __future__ import annotations

import streamlit as st

from core.accounts import keys
from core.accounts.keys import OwnerKind
from core.clock import utc_now
from core.errors import SwitchboardError
from core.request import Caller
from core.store.tables import ORG_OWNER_ID
from ui import settings
from ui.admin_data import AdminData


def shared_keys_tab(page: AdminData) -> None:
    svc, admin, me = page.svc, page.admin, page.me
    shared_keys, teams = page.shared_keys, page.teams
    st.caption(
        "Team keys pay for their team's requests when a member has no key of their "
        "own; the organisation's key pays for everyone else. Shown masked only."
    )
    if shared_keys:
        st.dataframe(
            [
                {
                    "Owner": page.owner_label(k.owner_kind, k.owner_id),
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
            f"{page.owner_label(k.owner_kind, k.owner_id)} · {k.provider} · {k.masked}": k
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
                    f"Deleted {page.owner_label(k.owner_kind, k.owner_id)}'s {k.provider} key."
                )

            settings.confirm(
                f"key:{chosen.owner_kind}:{chosen.owner_id}:{chosen.provider}",
                f"Delete {page.owner_label(chosen.owner_kind, chosen.owner_id)}'s "
                f"{chosen.provider} key {chosen.masked}?",
                _delete_shared,
                key="shared_key",
            )
        settings.show_key_test(chosen.provider, "team" if chosen.owner_kind == "team" else "org")
    else:
        st.info("No organisation or team keys yet.")
    owners: list[tuple[OwnerKind, int]] = [("org", ORG_OWNER_ID), *(("team", i) for i, _ in teams)]
    with st.form("add_shared_key", clear_on_submit=True):
        st.markdown("**Add or replace a key**")
        c1, c2, c3 = st.columns([1, 1, 2])
        owner = c1.selectbox(
            "Owner", owners, format_func=lambda o: page.owner_label(*o), key="shared_owner"
        )
        provider = c2.selectbox("Provider", sorted(page.known), key="shared_provider")
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
                            known_providers=page.known,
                        )
                except SwitchboardError as exc:
                    st.error(exc.message)
                else:
                    settings.routing_changed(svc)
                    settings.flash(
                        f"Saved {page.owner_label(*owner)}'s {saved.provider} key {saved.masked}."
                    )
