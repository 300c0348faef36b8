"""Who is signed in, and role guards that pages call first."""

from __future__ import annotations

import streamlit as st

from core.accounts.auth import UserInfo
from ui import state

ROLE_RANK = {"member": 0, "manager": 1, "admin": 2}


def current_user() -> UserInfo:
    user = st.session_state.get(state.CURRENT_USER)
    if not isinstance(user, UserInfo):
        st.error("You are not signed in. Open the home page to sign in.")
        st.stop()
    return user


def require_role(minimum: str) -> UserInfo:
    """Stop the page for users below ``minimum``; navigation hides it too, this is the backstop."""
    user = current_user()
    if ROLE_RANK[user.role] < ROLE_RANK[minimum]:
        st.error(f"This page is for {minimum}s only. Ask an admin if you need access.")
        st.stop()
    return user


def active_profile() -> str | None:
    """The profile chosen in the sidebar switch; None means the user's default settings."""
    value = st.session_state.get(state.ACTIVE_PROFILE)
    return value if isinstance(value, str) and value else None
