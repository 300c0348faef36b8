"""The dashboard script's body: page config, first run, sign-in, navigation by role.

st.navigation is called on every run, even signed out, so Streamlit never falls
back to listing every file in pages/. Widgets (the sign-in form) render only inside
a navigation page: before st.navigation runs, Streamlit's first run in a process is
still in pages-folder mode and would give the form widget ids that the next run no
longer recognises, silently dropping the first sign-in after a restart.
"""

from __future__ import annotations

import streamlit as st

from core.accounts import auth
from core.accounts.auth import UserInfo
from core.errors import SwitchboardError
from core.settings import profiles
from ui import navigation, resources, signin, state


def _setup_page() -> None:
    signin.first_admin_form(resources.services())


def _signed_out_page() -> None:
    if signin.sign_in(resources.services()) is not None:
        st.rerun()  # signed in (form or cookie): draw the pages for this role
    st.caption("Switchboard · a self-hosted LLM gateway for teams")


def render() -> None:
    st.set_page_config(page_title="Switchboard", page_icon=":material/hub:", layout="wide")
    try:
        svc = resources.services()
        with svc.sessions() as session:
            has_users = auth.count_users(session) > 0
    except SwitchboardError as exc:
        st.title("Switchboard cannot start")
        st.error(exc.message)
        st.stop()
    if not has_users:
        page = st.Page(_setup_page, title="Set up", url_path="setup")
        st.navigation([page], position="hidden").run()
        return
    # Signed in already: sign_in draws no form, only re-checks the account and the sidebar.
    user = signin.sign_in(svc) if st.session_state.get(state.AUTH_STATUS) is True else None
    if user is None:
        page = st.Page(_signed_out_page, title="Sign in", url_path="signin")
        st.navigation([page], position="hidden").run()
        return
    pages = st.navigation(navigation.pages_for(user))
    profile_switch(svc, user)
    pages.run()


def profile_switch(svc: resources.Services, user: UserInfo) -> None:
    """The sidebar switch: the active profile for every page (None: the user's own settings)."""
    with svc.sessions() as session:
        names = [p.name for p in profiles.list_profiles(session, user.id)]
    options = ["", *names]
    if st.session_state.get(state.PROFILE_SWITCH) not in options:
        # First run, or the profile was deleted or renamed: start from the active one if any.
        active = st.session_state.get(state.ACTIVE_PROFILE)
        st.session_state[state.PROFILE_SWITCH] = active if active in options else ""
    if names:
        st.sidebar.selectbox(
            "Profile",
            options,
            key=state.PROFILE_SWITCH,
            format_func=lambda n: n or "Default (my own settings)",
            help="Routes and keys choice used by chat and compare. Manage profiles on the "
            "Model preferences page.",
        )
    st.session_state[state.ACTIVE_PROFILE] = st.session_state[state.PROFILE_SWITCH] or None
