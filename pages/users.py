"""Admin: the people who can sign in, and adding new ones."""

import streamlit as st

from core import auth
from core.clock import utc_now
from core.errors import SwitchboardError
from core.models import ROLES
from ui.resources import services
from ui.session import require_role

admin = require_role("admin")
svc = services()

st.title("Users")
with st.expander("Add a user", expanded=False), st.form("add_user", clear_on_submit=True):
    c1, c2 = st.columns(2)
    username = c1.text_input("Username", placeholder="lowercase, e.g. bob", key="new_username")
    name = c2.text_input("Display name", key="new_name")
    email = c1.text_input("Email (optional)", key="new_email")
    team = c2.text_input("Team (optional)", help="Created if it doesn't exist.", key="new_team")
    role = c1.selectbox("Role", ROLES, index=ROLES.index("member"), key="new_role")
    password = c2.text_input(
        "Initial password", type="password", help="At least 10 characters.", key="new_password"
    )
    if st.form_submit_button("Add user", type="primary"):
        try:
            with svc.sessions.begin() as session:
                created = auth.create_user(
                    session, username=username, password=password, role=role,
                    team=team or None, display_name=name, email=email or None,
                    actor=admin.username, now=utc_now(),
                )
        except SwitchboardError as exc:
            st.error(exc.message)
        else:
            st.success(f"Added {created.role} {created.username!r}.")

with svc.sessions() as session:
    users = auth.list_users(session)

st.dataframe(
    [
        {
            "Username": u.username,
            "Name": u.display_name,
            "Email": u.email or "",
            "Role": u.role,
            "Team": u.team or "",
            "Active": u.active,
            "Created": u.created_at.astimezone().strftime("%Y-%m-%d %H:%M"),
        }
        for u in users
    ],
    hide_index=True,
    width="stretch",
)
