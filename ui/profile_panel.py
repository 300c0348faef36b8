"""The profiles section of Model preferences: list, create, change the keys choice, delete."""

from __future__ import annotations

import streamlit as st

from core.clock import utc_now
from core.errors import SwitchboardError
from core.settings import profiles
from core.settings.profiles import KEY_CHOICE_LABELS
from core.store.tables import KEY_CHOICES
from ui import settings, state
from ui.preferences_data import PreferencesData


def profiles_section(page: PreferencesData) -> None:
    """Profiles keep their own routes and keys choice; the one being edited can be deleted."""
    svc, user, profile = page.svc, page.user, page.profile
    with st.expander(f"Profiles ({len(page.my_profiles)})", expanded=not page.my_profiles):
        st.caption(
            "A profile keeps its own default model, routes and keys choice, e.g. "
            "Personal (your own keys) and Work (team keys). Each request records its profile."
        )
        if page.my_profiles:
            st.dataframe(
                [
                    {"Profile": p.name, "Keys": KEY_CHOICE_LABELS[p.keys_choice]}
                    for p in page.my_profiles
                ],
                hide_index=True,
                width="stretch",
            )
        with st.form("new_profile", clear_on_submit=True):
            c1, c2 = st.columns(2)
            new_name = c1.text_input(
                "New profile name", key="profile_name", placeholder="e.g. Work"
            )
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
                    settings.flash(
                        f"Created profile {made.name!r}. Pick it in the sidebar to edit it."
                    )
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
