"""Every page opens by its URL: signed out it shows the sign-in form, then that page.

A shared analytics view or a comparison link exists only to be opened by link, in a
new tab, by someone who may not be signed in yet; a reload must keep the page too.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from core.accounts import auth
from core.clock import utc_now
from core.compare import comparisons
from core.compare.rounds import RoundSettings
from tests.browser.conftest import FIRST_RUN_MS, UI_TIMEOUT_MS, _new_context
from tests.browser.test_signin_browser import AUTH_COOKIE, settled
from tests.conftest import PASSWORD, add_user

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

# (URL after the host, the page's heading) for every page an admin can open.
PAGES = [
    ("/", "Hello, alice"),
    ("/chat", "Chat"),
    ("/compare", "Compare"),
    ("/leaderboard", "Leaderboard"),
    ("/analytics?range=7d&view=Models", "Analytics"),
    ("/models?q=gpt", "Models"),
    ("/providers", "Providers & keys"),
    ("/preferences", "Model preferences"),
    ("/account", "My account"),
    ("/admin", "Admin"),
    ("/users", "Users"),
]
SIGN_INS = 20


@pytest.fixture(autouse=True)
def _patient_expectations() -> None:
    expect.set_options(timeout=UI_TIMEOUT_MS)  # the first run opens the database


def _heading(page: Page, text: str) -> None:
    expect(page.get_by_role("heading", name=text, exact=True).first).to_be_visible()


def _no_page_not_found(page: Page) -> None:
    expect(page.get_by_text("Page not found")).to_have_count(0)


def _sign_in_here(page: Page, username: str) -> None:
    """Fill the sign-in form the current URL shows, as a person would."""
    form = page.get_by_test_id("stForm")
    heading = form.get_by_role("heading", name="Sign in to Switchboard")
    expect(heading).to_be_visible(timeout=FIRST_RUN_MS)
    _no_page_not_found(page)
    settled(page)
    form.get_by_label("Username", exact=True).fill(username)
    form.get_by_label("Password", exact=True).fill(PASSWORD)
    form.get_by_role("button", name="Sign in", exact=True).click()


def _url(base: str, path: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(base + path) + "$")


def _wait_for_cookie(page: Page, timeout_s: float) -> float:
    """Seconds from now until the sign-in cookie exists; fails past ``timeout_s``."""
    start = time.monotonic()
    while not any(c["name"] == AUTH_COOKIE for c in page.context.cookies()):
        if time.monotonic() - start > timeout_s:
            pytest.fail(f"no {AUTH_COOKIE!r} cookie {timeout_s:.0f}s after signing in")
        page.wait_for_timeout(50)
    return time.monotonic() - start


def test_every_page_opens_by_url_after_sign_in_and_on_reload(
    browser: Browser,
    sessions,
    start_app: Callable[[], str],
    artifacts: Path,
) -> None:
    add_user(sessions, "alice", "admin")
    base = start_app()
    context = _new_context(browser)
    try:
        page = context.new_page()
        # Signed out, a shared analytics view shows the form, then that view.
        page.goto(base + "/analytics?range=7d&view=Models")
        expect(page).to_have_url(_url(base, "/analytics?range=7d&view=Models"))
        page.screenshot(path=str(artifacts / "deep-link-signed-out.png"), full_page=True)
        _sign_in_here(page, "alice")
        _heading(page, "Analytics")
        expect(page).to_have_url(_url(base, "/analytics?range=7d&view=Models"))
        _no_page_not_found(page)
        _wait_for_cookie(page, 30)

        for path, heading in PAGES:
            page.goto(base + path)
            _heading(page, heading)
            settled(page)
            expect(page).to_have_url(_url(base, path))
            _no_page_not_found(page)
            page.reload()
            _heading(page, heading)
            settled(page)
            expect(page).to_have_url(_url(base, path))
            _no_page_not_found(page)
        page.goto(base + "/analytics?range=7d&view=Models")
        _heading(page, "Analytics")
        settled(page)
        page.screenshot(path=str(artifacts / "deep-link-analytics.png"), full_page=True)
    finally:
        context.close()


def test_a_shared_comparison_link_opens_for_a_teammate(
    browser: Browser,
    sessions,
    start_app: Callable[[], str],
    artifacts: Path,
) -> None:
    owner = add_user(sessions, "dana", "member", team="red")
    add_user(sessions, "erin", "member", team="red")
    with sessions.begin() as s:
        caller = auth.caller_for(s, owner.id)
        session_id = comparisons.create_session(
            s,
            caller,
            RoundSettings(models=("openai/gpt-4o", "openai/gpt-4o-mini")),
            title="Capitals",
            now=utc_now(),
            shared=True,
        )
    base = start_app()
    context = _new_context(browser)  # the teammate's own browser: no cookie, no session
    try:
        page = context.new_page()
        page.goto(f"{base}/compare?session={session_id}")
        _sign_in_here(page, "erin")
        _heading(page, "Compare")
        expect(page.get_by_text("Shared by dana: read-only").first).to_be_visible()
        expect(page).to_have_url(_url(base, f"/compare?session={session_id}"))
        settled(page)
        page.screenshot(path=str(artifacts / "deep-link-shared-comparison.png"), full_page=True)
        _wait_for_cookie(page, 30)
        page.reload()
        expect(page.get_by_text("Shared by dana: read-only").first).to_be_visible()
    finally:
        context.close()


def test_the_sign_in_cookie_arrives_on_every_sign_in(
    browser: Browser,
    sessions,
    start_app: Callable[[], str],
) -> None:
    add_user(sessions, "alice", "admin")
    base = start_app()
    waits: list[float] = []
    for _ in range(SIGN_INS):
        context = _new_context(browser)
        try:
            page = context.new_page()
            page.goto(base + "/models")
            _sign_in_here(page, "alice")
            _heading(page, "Models")
            # Generous for a busy machine; the defect was a cookie that never came.
            waits.append(_wait_for_cookie(page, 30))
        finally:
            context.close()
    assert len(waits) == SIGN_INS
