"""Which pages each role sees. Pages not listed for a role are not routable for it."""

from __future__ import annotations

import streamlit as st

from core.accounts.auth import UserInfo

PAGES_DIR = "app_pages"


def _page(file: str, title: str, icon: str, *, default: bool = False) -> st.Page:
    return st.Page(f"{PAGES_DIR}/{file}", title=title, icon=f":material/{icon}:", default=default)


def pages_for(user: UserInfo) -> dict[str, list[st.Page]]:
    return _sections(admin=user.is_admin)


def all_pages() -> list[st.Page]:
    """Every page, for a visitor not yet signed in: a deep link keeps its URL meanwhile."""
    return [page for section in _sections(admin=True).values() for page in section]


def _sections(*, admin: bool) -> dict[str, list[st.Page]]:
    sections: dict[str, list[st.Page]] = {
        "Workspace": [
            _page("home.py", "Home", "home", default=True),
            _page("chat.py", "Chat", "chat"),
            _page("compare.py", "Compare", "compare"),
            _page("leaderboard.py", "Leaderboard", "leaderboard"),
            _page("analytics.py", "Analytics", "monitoring"),
            _page("models.py", "Models", "list"),
        ],
        "Settings": [
            _page("providers.py", "Providers & keys", "key"),
            _page("preferences.py", "Model preferences", "tune"),
            _page("account.py", "My account", "person"),
        ],
    }
    if admin:
        sections["Admin"] = [
            _page("admin.py", "Admin", "admin_panel_settings"),
            _page("users.py", "Users", "group"),
        ]
    return sections
