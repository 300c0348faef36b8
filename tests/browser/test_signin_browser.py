"""End to end in a real browser: sign-in, role-based navigation, the model catalog.

Users are created through the real CLI before `streamlit run app.py` starts on a
throwaway SQLite file; headless Chromium then drives the dashboard. The first three
tests share one server (``shared_app``, seeded with SEED_USERS); each still gets a
fresh, signed-out browser context.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import FIRST_RUN_MS

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

PASSWORD = "correct-horse-battery"
ADMIN = ("alice", "Alice Admin")
MEMBER = ("bob", "Bob Member")
AUTH_COOKIE = "switchboard_auth"  # Settings.cookie_name's default
SEED_USERS = [  # read by the shared_app fixture
    (ADMIN[0], PASSWORD, "admin", ADMIN[1]),
    (MEMBER[0], PASSWORD, "member", MEMBER[1]),
]


def settled(page: Page) -> None:
    """Wait until no script run is in progress.

    While Streamlit reruns, elements of the previous run stay on screen until the new
    run replaces them, so a locator can briefly match two copies; Playwright's
    assertions fail at once on such a "strict mode violation" instead of waiting.
    Positive checks below therefore use ``.first`` and most steps start from a
    settled page.
    """
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")


def hello(page: Page, name: str | None = None) -> Locator:
    pattern = re.compile(r"^Hello, ") if name is None else re.compile(rf"^Hello, {name}$")
    return page.get_by_role("heading", name=pattern)


def sign_in(page: Page, base: str, username: str, password: str) -> None:
    """Submit the sign-in form and wait until the app has reacted one way or another.

    The outcomes: the home page, an error message, or the form coming back empty
    (the submission was dropped). Callers assert which one they expect.
    """
    page.goto(base + "/")
    form = page.get_by_test_id("stForm")
    heading = form.get_by_role("heading", name="Sign in to Switchboard")
    expect(heading).to_be_visible(timeout=FIRST_RUN_MS)
    settled(page)
    form.get_by_label("Username", exact=True).fill(username)
    form.get_by_label("Password", exact=True).fill(password)
    form.get_by_role("button", name="Sign in", exact=True).click()
    dropped = page.locator('input[aria-label="Username"][value=""]')
    outcome = hello(page).or_(page.get_by_test_id("stAlert")).or_(dropped)
    expect(outcome.first).to_be_visible()
    settled(page)


def wait_for_cookie(page: Page, name: str = AUTH_COOKIE, timeout_s: float = 10.0) -> None:
    """The sign-in cookie is written by a component iframe a moment after the home page."""
    deadline = time.monotonic() + timeout_s
    while not any(c["name"] == name for c in page.context.cookies()):
        if time.monotonic() > deadline:
            pytest.fail(f"no {name!r} cookie {timeout_s:.0f}s after signing in", pytrace=False)
        page.wait_for_timeout(100)


def nav(page: Page) -> Locator:
    return page.get_by_test_id("stSidebarNav")


def open_page(page: Page, link: str, url_path: str) -> None:
    """Click a navigation link until its page loads.

    Right after sign-in the cookie component reruns the app once, and a click that lands
    during that rerun is dropped; a person would click again, so the test does too.
    """
    url = re.compile(rf"/{url_path}/?(\?.*)?$")
    for _ in range(3):
        settled(page)
        nav(page).get_by_role("link", name=link).click()
        try:
            expect(page).to_have_url(url, timeout=5_000)
            return
        except AssertionError:
            continue
    expect(page).to_have_url(url)


def test_admin_signs_in_and_browses_models(page: Page, shared_app: str, artifacts: Path) -> None:
    base = shared_app

    sign_in(page, base, ADMIN[0], PASSWORD)

    expect(hello(page, ADMIN[1]).first).to_be_visible()
    expect(nav(page).get_by_role("link", name="Home")).to_be_visible()
    expect(nav(page).get_by_role("link", name="Models")).to_be_visible()
    expect(nav(page).get_by_role("link", name="Users")).to_be_visible()
    expect(page.get_by_test_id("stSidebar").get_by_text("Signed in as").first).to_be_visible()
    expect(page.get_by_test_id("stMetric").first).to_be_visible()
    settled(page)
    page.screenshot(path=str(artifacts / "signin-home.png"), full_page=True)

    nav(page).get_by_role("link", name="Models").click()
    expect(page).to_have_url(re.compile(r"/models/?$"))
    expect(page.get_by_role("heading", name="Models", exact=True).first).to_be_visible()
    table = page.get_by_test_id("stDataFrame").first
    expect(table).to_be_visible()
    expect(table.locator("canvas").first).to_be_visible()
    expect(page.get_by_text(re.compile(r"^\d+ shown\.")).first).to_be_visible()
    settled(page)
    page.wait_for_timeout(500)  # let the canvas grid finish painting before the picture
    page.screenshot(path=str(artifacts / "models.png"), full_page=True)


def test_wrong_password_stays_on_the_form(page: Page, shared_app: str, artifacts: Path) -> None:
    base = shared_app

    sign_in(page, base, ADMIN[0], "not-the-password")

    expect(page.get_by_text("Wrong username or password").first).to_be_visible()
    expect(page.get_by_role("heading", name="Sign in to Switchboard").first).to_be_visible()
    expect(page.get_by_role("button", name="Sign in", exact=True).first).to_be_visible()
    expect(hello(page)).to_have_count(0)
    expect(nav(page)).to_have_count(0)
    page.screenshot(path=str(artifacts / "signin-wrong-password.png"), full_page=True)


def test_member_cannot_open_users_page_by_url(page: Page, shared_app: str, artifacts: Path) -> None:
    base = shared_app

    sign_in(page, base, MEMBER[0], PASSWORD)
    expect(hello(page, MEMBER[1]).first).to_be_visible()
    expect(nav(page).get_by_role("link", name="Models")).to_be_visible()
    expect(nav(page).get_by_role("link", name="Users")).to_have_count(0)
    wait_for_cookie(page)

    page.goto(base + "/users")
    # A new session: the sign-in cookie brings the member back, and /users is not
    # routable for them, so Streamlit falls back to the default (home) page.
    expect(hello(page, MEMBER[1]).first).to_be_visible()
    expect(page).not_to_have_url(re.compile(r"/users/?$"))
    settled(page)
    expect(page.get_by_role("heading", name="Users", exact=True)).to_have_count(0)
    expect(page.get_by_text("Manage users and teams")).to_have_count(0)
    expect(page.get_by_test_id("stDataFrame")).to_have_count(0)
    expect(nav(page).get_by_role("link", name="Users")).to_have_count(0)
    page.screenshot(path=str(artifacts / "member-users-url.png"), full_page=True)


def test_first_sign_in_after_server_start(
    page: Page,
    start_app: Callable[[], str],
    cli_add_user: Callable[..., None],
) -> None:
    cli_add_user(ADMIN[0], PASSWORD, role="admin", name=ADMIN[1])
    base = start_app()  # this browser session is the server process's first

    sign_in(page, base, ADMIN[0], PASSWORD)

    expect(hello(page, ADMIN[1])).to_be_visible(timeout=1_000)
