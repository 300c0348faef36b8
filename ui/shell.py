"""The dashboard script's body: page config, first run, sign-in, navigation by role.

Deep links: signed out (or before the first admin exists) every page is registered,
hidden and not run, and the form is drawn in its place. The URL, query string
included, therefore survives sign-in: the rerun after it opens the page asked for.
Page scripts live in app_pages/, not pages/: a pages/ folder beside app.py puts a
fresh server in Streamlit's legacy folder mode until some session calls
st.navigation, and the first visitor gets raw file names and the wrong page.
"""

from __future__ import annotations

from typing import NoReturn

import streamlit as st

from core.accounts import auth
from core.accounts.auth import UserInfo
from core.errors import DatabaseUnavailable, SwitchboardError
from core.settings import profiles
from core.store import db
from ui import navigation, resources, signin, state


def _signed_out(svc: resources.Services) -> None:
    st.navigation(navigation.all_pages(), position="hidden")  # keeps the URL; not run
    if signin.sign_in(svc) is not None:
        st.rerun()  # signed in (form or cookie): open the page the URL names
    st.caption("Switchboard · a self-hosted LLM gateway for teams")


def database_banner(exc: Exception) -> NoReturn:
    """A page's database went away: say so plainly, never a traceback, and stop the run."""
    st.error(
        "**The database is not answering right now**, so this page cannot load or save. "
        "Answers already given are still counted: their usage rows wait in the local "
        "ledger journal and are written once it is back. Try again in a few seconds; if "
        "this lasts, ask an admin to check the database (its state is at `/health`).",
        icon=":material/database_off:",
    )
    st.caption(f"Reason: {type(exc).__name__}")
    st.stop()


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
    except db.UNAVAILABLE as exc:
        database_banner(exc)
    try:
        _navigate(svc, has_users)
    except Exception as exc:
        if not isinstance(exc, DatabaseUnavailable) and not db.is_unavailable(exc):
            raise
        database_banner(exc)


def _navigate(svc: resources.Services, has_users: bool) -> None:
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
