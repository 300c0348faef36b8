"""Sign-in through streamlit-authenticator, backed by the users table, with DB-kept lockout."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import streamlit as st
import streamlit_authenticator as stauth
from streamlit_authenticator.utilities.exceptions import LoginError

from core.accounts import auth, sessions, signin_guard
from core.accounts.auth import UserInfo
from core.clock import utc_now
from core.errors import SwitchboardError
from core.store.tables import User
from ui import state
from ui.resources import Services

FIELDS = {"Form name": "Sign in to Switchboard", "Login": "Sign in"}


def _credentials(svc: Services) -> dict[str, Any]:
    """The authenticator's credentials dict, rebuilt from the database on every run."""
    users: dict[str, Any] = {}
    with svc.sessions() as session:
        for u in session.query(User).filter(User.active.is_(True)):
            users[u.username] = {
                "name": u.display_name,
                "email": u.email or "",
                "password": u.password_hash,
                "roles": [u.role],
            }
    return {"usernames": users}


def _checked_password(svc: Services, creds: dict[str, Any]) -> Callable[[str, str], bool]:
    """Replaces the library's password check: lockout, the per-address throttle and the
    same cost for every try, whether or not the name exists (core/accounts/signin_guard.py)."""

    def check(username: str, password: str) -> bool:
        entry = creds["usernames"].get(username)
        address = st.context.ip_address  # None on localhost (and not a str under AppTest)
        return signin_guard.check_sign_in(
            svc.sessions,
            username,
            password,
            entry["password"] if entry else None,
            address if isinstance(address, str) else None,
            utc_now(),
        )

    return check


def _on_success(svc: Services) -> Any:
    def callback(event: dict[str, Any]) -> None:
        now = utc_now()
        with svc.sessions.begin() as session:
            auth.record_login_success(session, event["username"], now)
        st.session_state[state.SIGNED_IN_AT] = now
        # The shell reruns at once to draw this role's pages; _set_pending_cookie writes
        # the cookie (the library writes none: it is given no lifetime).
        if svc.settings.cookie_expiry_days > 0:
            st.session_state[state.COOKIE_PENDING] = _pending_cookie(svc, event["username"], now)

    return callback


def _on_sign_out(svc: Services) -> Any:
    def callback(event: dict[str, Any]) -> None:
        username = event.get("username")
        if username:  # every copy of this user's cookie, on every replica, ends here
            with svc.sessions.begin() as session:
                sessions.end_sessions(session, username, utc_now())
        st.session_state.pop(state.SIGNED_IN_AT, None)

    return callback


def _pending_cookie(svc: Services, username: str, issued: datetime) -> dict[str, str]:
    """The sign-in cookie, built once: the same token, expiry and component key each run."""
    lifetime = timedelta(days=svc.settings.cookie_expiry_days)
    return {
        "token": sessions.cookie_token(username, issued, lifetime, svc.cookie_key),
        "expires": (issued + lifetime).isoformat(),
        "key": f"sb_cookie_{secrets.token_hex(4)}",
    }


def _served_over_https() -> bool:
    """HTTPS here or at a proxy in front (X-Forwarded-Proto): the cookie gets ``Secure``."""
    url = st.context.url or ""
    forwarded = st.context.headers.get("x-forwarded-proto", "")
    return url.startswith("https://") or forwarded.split(",")[0].strip().lower() == "https"


def _checked_cookie(svc: Services) -> Callable[[], dict[str, Any] | None]:
    """Replaces the library's cookie reader: a cookie issued before the user's last
    sign-out, password change, reset, deactivation or role change signs nobody in."""

    def read() -> dict[str, Any] | None:
        if st.session_state.get("logout"):  # the library's flag: signed out in this tab
            return None
        token = st.context.cookies.get(svc.settings.cookie_name)
        claims = sessions.read_cookie(token, svc.cookie_key, utc_now()) if token else None
        if claims is None:
            return None
        with svc.sessions() as session:
            if auth.find_session_user(session, claims.username, claims.issued) is None:
                return None
        st.session_state[state.SIGNED_IN_AT] = claims.issued
        return {"username": claims.username, "exp_date": claims.expires.timestamp()}

    return read


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
        options={
            "path": "/",
            "expires": pending["expires"],
            "sameSite": "strict",
            "secure": _served_over_https(),
        },
        key=pending["key"],
        default=False,
    )
    if done:
        st.session_state.pop(state.COOKIE_PENDING, None)


def sign_in(svc: Services) -> UserInfo | None:
    """Render the sign-in form when needed; return the signed-in, still-active user."""
    already_signed_in = st.session_state.get(state.AUTH_STATUS) is True
    creds = _credentials(svc)
    authenticator = stauth.Authenticate(
        creds,
        svc.settings.cookie_name,
        svc.cookie_key,
        0,  # no lifetime: the library never writes its own cookie, which has no issue time
        auto_hash=False,
    )
    authenticator.cookie_controller.cookie_model.get_cookie = _checked_cookie(svc)
    model = authenticator.authentication_controller.authentication_model
    model.check_credentials = _checked_password(svc, creds)
    try:
        authenticator.login(
            location="main",
            fields=FIELDS,
            callback=_on_success(svc),
        )
    except LoginError:
        st.error("Your sign-in is no longer valid. Please sign in again.")
        return None
    status = st.session_state.get(state.AUTH_STATUS)
    if status is not True:
        st.session_state.pop(state.COOKIE_PENDING, None)  # signed out: nothing to set
    if status is False:
        st.error(signin_guard.FAILED)  # the same words whatever went wrong
        return None
    if not status:
        return None
    username = st.session_state.get(state.AUTH_USERNAME) or ""
    with svc.sessions() as session:
        user = auth.find_session_user(session, username, st.session_state.get(state.SIGNED_IN_AT))
        active = user is not None or auth.find_active_user(session, username) is not None
    if user is None:
        authenticator.logout(location="unrendered")
        st.session_state.pop(state.SIGNED_IN_AT, None)
        st.error(
            "Your session has ended (signed out elsewhere, or the password or role changed). "
            "Please sign in again."
            if active
            else "This account is deactivated. Ask an admin to reactivate it."
        )
        return None
    st.session_state[state.CURRENT_USER] = user
    if already_signed_in:
        _set_pending_cookie(authenticator, svc)
    with st.sidebar:
        st.caption(f"Signed in as **{user.display_name}** · {user.role}")
        authenticator.logout(
            "Sign out", location="sidebar", key="sb_logout", callback=_on_sign_out(svc)
        )
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
