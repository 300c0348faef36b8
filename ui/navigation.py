"""Which pages each role sees. Pages not listed for a role are not routable for it."""

from __future__ import annotations

import streamlit as st

from core.auth import UserInfo

PAGES_DIR = "pages"


def pages_for(user: UserInfo) -> dict[str, list[st.Page]]:
    sections: dict[str, list[st.Page]] = {
        "Workspace": [
            st.Page(f"{PAGES_DIR}/home.py", title="Home", icon=":material/home:", default=True),
            st.Page(f"{PAGES_DIR}/models.py", title="Models", icon=":material/list:"),
        ],
    }
    if user.is_admin:
        sections["Admin"] = [
            st.Page(f"{PAGES_DIR}/users.py", title="Users", icon=":material/group:"),
        ]
    return sections
