"""The dashboard script's body: page config, first run, sign-in, navigation by role.

Deep links: signed out (or before the first admin exists) every page is registered,
hidden and not run, and the form is drawn in its place. The URL, query string
included, therefore survives sign-in: the rerun after it opens the page asked for.
Page scripts live in app_pages/, not pages/: a pages/ folder beside app.py puts a
fresh server in Streamlit's legacy folder mode until some session calls
st.navigation, and the first visitor gets raw file names and the wrong page.
"""

from __future__ import annotations

import streamlit as st

from core.accounts import auth
from core.accounts.auth import UserInfo
from core.errors import SwitchboardError
from core.settings import profiles
from ui import navigation, resources, signin, state


def _signed_out(svc: resources.Services) -> None:
    st.navigation(navigation.all_pages(), position="hidden")  # keeps the URL; not run
    if signin.sign_in(svc) is not None:
        st.rerun()  # signed in (form or cookie): open the page the URL names
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
        st.navigation(navigation.all_pages(), position="hidden")
        signin.first_admin_form(svc)
        return
    # Signed in already: sign_in draws no form, only re-checks the account and the sidebar.
    user = signin.sign_in(svc) if st.session_state.get(state.AUTH_STATUS) is True else None
    if user is None:
        _signed_out(svc)
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
