"""Issue 20, finding 2: a copied sign-in cookie dies with sign-out and with a password change.

Two `streamlit run app.py` processes share one database, as two replicas would. A
cookie signed in on the first is copied into a fresh browser context and replayed on
the second: it works until its owner signs out (or the password changes), then it
signs nobody in, and a live session on the second replica ends at its next action.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from core.accounts import auth
from core.clock import utc_now
from core.store import db
from tests.browser.conftest import UI_TIMEOUT_MS
from tests.browser.test_signin_browser import (
    AUTH_COOKIE,
    PASSWORD,
    hello,
    nav,
    settled,
    sign_in,
    wait_for_cookie,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

MEMBER = ("bob", "Bob Member")
NEW_PASSWORD = "another-horse-battery"


@pytest.fixture
def contexts(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """Fresh browser contexts: separate cookie jars, as two people's browsers."""
    expect.set_options(timeout=UI_TIMEOUT_MS)
    made: list[BrowserContext] = []

    def new(**options: Any) -> BrowserContext:
        context = browser.new_context(viewport={"width": 1400, "height": 900}, **options)
        context.set_default_timeout(UI_TIMEOUT_MS)
        made.append(context)
        return context

    yield new
    for context in made:
        context.close()


def _copied_cookie(page: Page) -> dict[str, Any]:
    wait_for_cookie(page)
    cookie = next(c for c in page.context.cookies() if c["name"] == AUTH_COOKIE)
    assert cookie["sameSite"] == "Strict"
    return {"name": cookie["name"], "value": cookie["value"]}


def _replay(context: BrowserContext, cookie: dict[str, Any], base: str) -> Page:
    """A thief's browser: only the copied cookie, opening the other replica."""
    context.add_cookies([{**cookie, "url": base}])  # type: ignore[list-item]
    page = context.new_page()
    page.goto(base + "/")
    return page


def _signed_out(page: Page) -> None:
    form = page.get_by_test_id("stForm")
    expect(form.get_by_role("heading", name="Sign in to Switchboard")).to_be_visible()
    expect(hello(page)).to_have_count(0)


def test_a_copied_cookie_stops_working_after_sign_out_and_password_change(
    contexts: Callable[..., BrowserContext],
    start_app: Callable[[], str],
    cli_add_user: Callable[..., None],
) -> None:
    cli_add_user(MEMBER[0], PASSWORD, role="member", name=MEMBER[1])
    first, second = start_app(), start_app()
    for base in (first, second):  # a busy machine: let each replica open its database
        warm = contexts().new_page()
        warm.goto(base + "/")
        heading = warm.get_by_test_id("stForm").get_by_role("heading")
        expect(heading.first).to_be_visible(timeout=150_000)
        warm.close()

    owner = contexts().new_page()
    sign_in(owner, first, MEMBER[0], PASSWORD)
    expect(hello(owner, MEMBER[1]).first).to_be_visible()
    cookie = _copied_cookie(owner)

    thief = _replay(contexts(), cookie, second)
    expect(hello(thief, MEMBER[1]).first).to_be_visible()  # the copy works before sign-out
    settled(thief)

    settled(owner)
    owner.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
    _signed_out(owner)

    # The thief's live session on the other replica ends at its next action...
    nav(thief).get_by_role("link", name="Models").click()
    _signed_out(thief)
    # ...and the copied cookie signs nobody in on either replica.
    for base in (second, first):
        _signed_out(_replay(contexts(), cookie, base))

    # Signed in again: a fresh cookie works, until the password changes.
    sign_in(owner, first, MEMBER[0], PASSWORD)
    expect(hello(owner, MEMBER[1]).first).to_be_visible()
    cookie = _copied_cookie(owner)
    expect(hello(_replay(contexts(), cookie, second), MEMBER[1]).first).to_be_visible()
    engine = db.make_engine(os.environ["SWITCHBOARD_DB_URL"])
    try:
        with db.make_session_factory(engine).begin() as s:
            auth.change_password(
                s,
                username=MEMBER[0],
                current=PASSWORD,
                new_password=NEW_PASSWORD,
                now=utc_now(),
                rounds=4,
            )
    finally:
        engine.dispose()
    _signed_out(_replay(contexts(), cookie, second))


def test_the_cookie_is_secure_only_when_served_over_https(
    contexts: Callable[..., BrowserContext],
    start_app: Callable[[], str],
    cli_add_user: Callable[..., None],
) -> None:
    """A TLS-terminating proxy says `X-Forwarded-Proto: https`; the browser then holds the
    cookie as `Secure` (never sent over plain HTTP). Chromium accepts a Secure cookie
    from http://127.0.0.1, so the same app serves both cases."""
    cli_add_user(MEMBER[0], PASSWORD, role="member", name=MEMBER[1])
    base = start_app()
    for proxied in (False, True):
        headers = {"X-Forwarded-Proto": "https"} if proxied else {}
        page = contexts(extra_http_headers=headers).new_page()
        sign_in(page, base, MEMBER[0], PASSWORD)
        expect(hello(page, MEMBER[1]).first).to_be_visible()
        wait_for_cookie(page)
        cookie = next(c for c in page.context.cookies() if c["name"] == AUTH_COOKIE)
        assert cookie["secure"] is proxied, cookie
        assert cookie["sameSite"] == "Strict"
