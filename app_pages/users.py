"""Admin: users and teams: add, deactivate, change role or team, reset a password."""

from collections.abc import Callable

import streamlit as st
from sqlalchemy.orm import Session

from core.accounts import auth
from core.clock import utc_now
from core.errors import SwitchboardError
from core.store.tables import ROLES
from ui import settings
from ui.resources import services
from ui.session import require_role

admin = require_role("admin")
svc = services()

st.title("Users")
settings.show_flash()
NEW_USER_FIELDS = ("new_username", "new_name", "new_email", "new_team", "new_role", "new_password")
# Not clear_on_submit: a refused form keeps what was typed; only a success empties it.
with st.expander("Add a user", expanded=False), st.form("add_user"):
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
                    session,
                    username=username,
                    password=password,
                    role=role,
                    team=team or None,
                    display_name=name,
                    email=email or None,
                    actor=admin.username,
                    now=utc_now(),
                )
        except SwitchboardError as exc:
            st.error(exc.message)
        else:
            for field in NEW_USER_FIELDS:
                st.session_state.pop(field, None)  # the next run draws an empty form
            settings.flash(f"Added {created.role} {created.username!r}.")

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

st.subheader("Change a user")
names = [u.username for u in users]
who = st.selectbox("User", names, key="edit_user")
target = next(u for u in users if u.username == who)
st.caption(
    f"{target.display_name} · {target.role} · team {target.team or 'none'} · "
    + ("active" if target.active else "deactivated")
)


def _apply(change: str, action: Callable[[Session], object]) -> None:
    """Run one change in its own transaction; show the refusal, or say what changed."""
    try:
        with svc.sessions.begin() as session:
            action(session)
    except SwitchboardError as exc:
        st.error(exc.message)
    else:
        settings.routing_changed(svc)  # team moves change which team keys and budgets apply
        settings.flash(change)


c1, c2 = st.columns(2)
with c1:
    new_role = st.selectbox("Role", ROLES, index=ROLES.index(target.role), key="edit_role")
    if st.button("Save role", key="save_role"):
        _apply(
            f"{who} is now {new_role}.",
            lambda s: auth.set_role(
                s, username=who, role=new_role, actor=admin.username, now=utc_now()
            ),
        )
with c2:
    new_team = st.text_input("Team (empty: no team)", value=target.team or "", key="edit_team")
    if st.button("Save team", key="save_team"):
        _apply(
            f"{who} moved to {new_team.strip() or 'no team'}.",
            lambda s: auth.set_team(
                s, username=who, team=new_team or None, actor=admin.username, now=utc_now()
            ),
        )

c1, c2 = st.columns(2)
with c1:
    if target.active:
        settings.confirm(
            f"deactivate:{who}",
            f"Deactivate {who}? They are signed out on their next action and cannot sign in; "
            "their history stays.",
            lambda: _apply(
                f"Deactivated {who}.",
                lambda s: auth.set_active(
                    s, username=who, active=False, actor=admin.username, now=utc_now()
                ),
            ),
            key="deactivate",
            label="Deactivate",
        )
    elif st.button("Reactivate", key="reactivate"):
        _apply(
            f"Reactivated {who}.",
            lambda s: auth.set_active(
                s, username=who, active=True, actor=admin.username, now=utc_now()
            ),
        )
with c2, st.form("reset_password", clear_on_submit=True):
    new_password = st.text_input(
        "New password",
        type="password",
        key="reset_pw",
        help=f"At least {auth.MIN_PASSWORD_LENGTH} characters.",
    )
    if st.form_submit_button("Reset password"):
        _apply(
            f"Password reset for {who}; tell them the new one in person.",
            lambda s: auth.reset_password(
                s, username=who, new_password=new_password, actor=admin.username, now=utc_now()
            ),
        )
