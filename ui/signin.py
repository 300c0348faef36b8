"""Sign-in through streamlit-authenticator, backed by the users table, with DB-kept lockout."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import jwt
import streamlit as st
import streamlit_authenticator as stauth
from streamlit_authenticator.utilities.exceptions import LoginError

from core.accounts import auth
from core.accounts.auth import UserInfo
from core.clock import utc_now
from core.errors import SwitchboardError
from core.store.tables import User
from ui import state
from ui.resources import Services

FIELDS = {"Form name": "Sign in to Switchboard", "Login": "Sign in"}


def _credentials(svc: Services) -> dict[str, Any]:
    """The authenticator's credentials dict, rebuilt from the database on every run.

    Locked accounts get a failure count at the threshold, so the library refuses them.
    """
    now = utc_now()
    users: dict[str, Any] = {}
    with svc.sessions() as session:
        locked_names = auth.locked_usernames(session, now)
        for u in session.query(User).filter(User.active.is_(True)):
            locked = u.username in locked_names
            users[u.username] = {
                "name": u.display_name,
                "email": u.email or "",
                "password": u.password_hash,
                "roles": [u.role],
                "failed_login_attempts": auth.LOCKOUT_THRESHOLD if locked else 0,
            }
    return {"usernames": users}


def _record_failures(svc: Services, before: dict[str, int], creds: dict[str, Any]) -> None:
    """Persist the failures the library counted in memory; say so if that locked the account."""
    now = utc_now()
    failed = [
        name
        for name, entry in creds["usernames"].items()
        if entry.get("failed_login_attempts", 0) > before.get(name, 0)
    ]
    with svc.sessions.begin() as session:
        for name in failed:
            auth.record_login_failure(session, name, now)
    with svc.sessions() as session:
        for name in failed:
            until = auth.locked_until(session, name, now)
            if until is not None:
                st.error(auth.lock_message(until, now).message)


def _on_success(svc: Services) -> Any:
    def callback(event: dict[str, Any]) -> None:
        with svc.sessions.begin() as session:
            auth.record_login_success(session, event["username"], utc_now())
        # The shell reruns at once to draw this role's pages, which discards the cookie
        # component the library renders now; _set_pending_cookie finishes the job.
        if svc.settings.cookie_expiry_days > 0:
            st.session_state[state.COOKIE_PENDING] = _pending_cookie(svc, event["username"])

    return callback


def _pending_cookie(svc: Services, username: str) -> dict[str, str]:
    """The sign-in cookie, built once: the same token, expiry and component key each run."""
    expires = utc_now() + timedelta(days=svc.settings.cookie_expiry_days)
    # The token streamlit-authenticator itself writes and reads back.
    claims = {"username": username, "exp_date": expires.timestamp()}
    return {
        "token": jwt.encode(claims, svc.cookie_key, algorithm="HS256"),
        "expires": expires.isoformat(),
        "key": f"sb_cookie_{secrets.token_hex(4)}",
    }


def _set_pending_cookie(authenticator: Any, svc: Services) -> None:
    """Draw the cookie setter, identical every run, until the browser says it is set.

    A setter drawn in one run only can be unmounted by the next rerun before its frame
    loads, and the cookie never arrives. A component keeps its identity while its key
    and arguments stay the same, so redrawing it costs nothing once it is mounted.
    """
    pending = st.session_state.get(state.COOKIE_PENDING)
    if not isinstance(pending, dict):
        return
    setter = authenticator.cookie_controller.cookie_model.cookie_manager.cookie_manager
    done = setter(
        method="set",
        cookie=svc.settings.cookie_name,
        value=pending["token"],
        options={"path": "/", "expires": pending["expires"], "sameSite": "strict"},
        key=pending["key"],
        default=False,
    )
    if done:
        st.session_state.pop(state.COOKIE_PENDING, None)


def sign_in(svc: Services) -> UserInfo | None:
    """Render the sign-in form when needed; return the signed-in, still-active user."""
    already_signed_in = st.session_state.get(state.AUTH_STATUS) is True
    creds = _credentials(svc)
    before = {n: e["failed_login_attempts"] for n, e in creds["usernames"].items()}
    authenticator = stauth.Authenticate(
        creds,
        svc.settings.cookie_name,
        svc.cookie_key,
        svc.settings.cookie_expiry_days,
        auto_hash=False,
    )
    try:
        authenticator.login(
            location="main",
            max_login_attempts=auth.LOCKOUT_THRESHOLD,
            fields=FIELDS,
            callback=_on_success(svc),
        )
    except LoginError as exc:
        if "login attempts" in str(exc):
            minutes = int(auth.LOCKOUT_DURATION.total_seconds() // 60)
            st.error(
                "Too many failed sign-ins for this account. It is locked for up to "
                f"{minutes} minutes; try again later or ask an admin."
            )
        else:
            st.error("Your sign-in is no longer valid. Please sign in again.")
        return None
    status = st.session_state.get(state.AUTH_STATUS)
    if status is not True:
        st.session_state.pop(state.COOKIE_PENDING, None)  # signed out: nothing to set
    if status is False:
        st.error("Wrong username or password.")
        _record_failures(svc, before, creds)
        return None
    if not status:
        return None
    username = st.session_state.get(state.AUTH_USERNAME) or ""
    with svc.sessions() as session:
        user = auth.find_active_user(session, username)
    if user is None:
        authenticator.logout(location="unrendered")
        st.error("This account is deactivated. Ask an admin to reactivate it.")
        return None
    st.session_state[state.CURRENT_USER] = user
    if already_signed_in:
        _set_pending_cookie(authenticator, svc)
    with st.sidebar:
        st.caption(f"Signed in as **{user.display_name}** · {user.role}")
        authenticator.logout("Sign out", location="sidebar", key="sb_logout")
    return user


def first_admin_form(svc: Services) -> None:
    """One-time form shown while the users table is empty."""
    st.title("Welcome to Switchboard")
    st.write("There are no users yet. Create the first admin account to get started.")
    with st.form("first_admin", clear_on_submit=False):
        username = st.text_input("Username", placeholder="e.g. alice")
        name = st.text_input("Display name")
        email = st.text_input("Email (optional)")
        password = st.text_input("Password", type="password", help="At least 10 characters.")
        repeat = st.text_input("Repeat password", type="password")
        submitted = st.form_submit_button("Create admin", type="primary")
    if not submitted:
        return
    if password != repeat:
        st.error("The two passwords differ. Nothing was saved; type them again.")
        return
    try:
        with svc.sessions.begin() as session:
            auth.create_first_admin(
                session,
                username=username,
                password=password,
                display_name=name,
                email=email or None,
                now=utc_now(),
            )
    except SwitchboardError as exc:
        st.error(exc.message)
        return
    st.success("Admin created. Sign in below.")
    st.rerun()
