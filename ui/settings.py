"""Shared glue for the settings and admin pages: who is asking, confirmations, key tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core.accounts import auth
from core.errors import SwitchboardError
from core.request import Caller
from core.settings import endpoints, keytest, profiles
from core.settings.keytest import KeyTestResult
from core.settings.profiles import ProfileInfo
from core.settings.routes import DEFAULT_KEY_ORDER
from ui import state
from ui.resources import Services
from ui.session import active_profile


def caller(svc: Services, user_id: int) -> Caller:
    with svc.sessions() as session:
        return auth.caller_for(session, user_id)


def current_profile(svc: Services, user_id: int) -> ProfileInfo | None:
    """The sidebar's active profile, if it still exists."""
    name = active_profile()
    if name is None:
        return None
    with svc.sessions() as session:
        return profiles.find_profile(session, user_id, name)


def key_order(profile: ProfileInfo | None) -> tuple[str, ...]:
    return profile.key_order if profile else DEFAULT_KEY_ORDER


def routing_changed(svc: Services) -> None:
    """Drop the gateway's cached policy so the change applies to the next request."""
    svc.runtime.gateway.refresh()


def when(at: datetime | None) -> str:
    return at.astimezone().strftime("%Y-%m-%d %H:%M") if at else "never"


def confirm(
    what: str, question: str, on_yes: Callable[[], None], *, key: str, label: str = "Delete"
) -> None:
    """A destructive button: the first click asks, "Yes" runs ``on_yes``, "Cancel" forgets it."""
    pending = st.session_state.get(state.CONFIRM_DELETE)
    if pending != what:
        if st.button(label, key=f"del_{key}"):
            st.session_state[state.CONFIRM_DELETE] = what
            st.rerun()
        return
    st.warning(question)
    yes, no = st.columns(2)
    if yes.button(f"Yes, {label.lower()}", key=f"yes_{key}", type="primary"):
        st.session_state.pop(state.CONFIRM_DELETE, None)
        on_yes()
    if no.button("Cancel", key=f"no_{key}"):
        st.session_state.pop(state.CONFIRM_DELETE, None)
        st.rerun()


def run_key_test(svc: Services, who: Caller, provider: str, key_source: str | None) -> None:
    """Send one tiny request through the gateway with exactly this key; remember the result."""
    with svc.sessions() as session:
        listed = endpoints.list_endpoints(session)
    try:
        model = keytest.pick_test_model(provider, svc.catalog, listed)
    except SwitchboardError as exc:  # nothing to test with
        result = KeyTestResult(False, "", 0, exc.message)
    else:
        request = keytest.key_test_request(who, model, key_source)
        with st.spinner(f"Testing {provider} with {model}…"):
            result = keytest.run_key_test(svc.gateway.stream, request, provider)
    results = dict(st.session_state.get(state.KEY_TEST_RESULT) or {})
    results[f"{provider}:{key_source}"] = result
    st.session_state[state.KEY_TEST_RESULT] = results


def show_key_test(provider: str, key_source: str | None) -> None:
    result = (st.session_state.get(state.KEY_TEST_RESULT) or {}).get(f"{provider}:{key_source}")
    if isinstance(result, KeyTestResult):
        (st.success if result.ok else st.error)(
            result.message
            if result.ok
            else f"Test failed after {result.latency_ms} ms. " + result.message
        )


def rerun_section() -> None:
    """Redraw the fragment whose button was clicked, not the whole page.

    A click inside a fragment runs only that fragment; when the run is a full one
    (the page's own rerun, or AppTest, which always runs the whole script) the whole
    page is redrawn, as Streamlit refuses a fragment-scoped rerun there.
    """
    ctx = get_script_run_ctx()
    st.rerun(scope="fragment" if ctx is not None and ctx.fragment_ids_this_run else "app")


def flash(message: str) -> None:
    """Say ``message`` after the rerun that redraws the page with the saved change."""
    st.session_state[state.FLASH] = message
    st.rerun()


def show_flash(*, toast: bool = False) -> None:
    """The message a save left; ``toast`` floats it, so the page layout does not move."""
    message = st.session_state.pop(state.FLASH, None)
    if isinstance(message, str):
        if toast:
            st.toast(message, icon=":material/check_circle:")
        else:
            st.success(message)
