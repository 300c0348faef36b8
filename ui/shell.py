"""The dashboard script's body: page config, first run, sign-in, navigation by role.

st.navigation is called on every run, even signed out, so Streamlit never falls
back to listing every file in pages/.
"""

from __future__ import annotations

import streamlit as st

from core import auth
from core.errors import SwitchboardError
from ui import navigation, resources, signin


def _setup_page() -> None:
    signin.first_admin_form(resources.services())


def _signed_out_page() -> None:
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
    user = signin.sign_in(svc)
    if user is None:
        page = st.Page(_signed_out_page, title="Sign in", url_path="signin")
        st.navigation([page], position="hidden").run()
        return
    st.navigation(navigation.pages_for(user)).run()
