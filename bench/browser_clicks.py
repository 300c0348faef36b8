"""Timing one click in Chromium: from the click to the page settled.

"Settled" is what a person sees: Streamlit's "Running" indicator gone (the stApp
element's data-test-script-state is back to "notRunning" after at least one run began
since the click) and the content the click should bring visible. A MutationObserver
on stApp counts the runs that start, so a run that starts and ends between two polls
is still seen.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

TIMEOUT_MS = 120_000
_OBSERVE = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || window.__sbObserved === app) return;
  window.__sbObserved = app;
  window.__sbRuns = window.__sbRuns || 0;
  new MutationObserver(() => {
    if (app.getAttribute('data-test-script-state') === 'running') window.__sbRuns += 1;
  }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""
_STARTED_AFTER = "(runs) => window.__sbRuns > runs"
_SETTLED_AFTER = """(runs) => {
  const app = document.querySelector('[data-testid="stApp"]');
  return window.__sbRuns > runs && app.getAttribute('data-test-script-state') === 'notRunning';
}"""


def settled(page: Page) -> None:
    expect(page.get_by_test_id("stApp")).to_have_attribute(
        "data-test-script-state", "notRunning", timeout=TIMEOUT_MS
    )


def _runs(page: Page) -> int:
    page.evaluate(_OBSERVE)
    return int(page.evaluate("() => window.__sbRuns"))


def timed_click(
    page: Page, act: Callable[[], None], shows: Locator, *, settle: bool = True
) -> float:
    """Seconds from ``act`` (the click or key press) until ``shows`` is visible and,
    with ``settle``, no run is in progress. A click that starts no run in 15 s is made
    again, and the wait counts: a person would wait and click again too."""
    settled(page)
    before = _runs(page)
    started = time.perf_counter()
    act()
    if settle:
        for _ in range(2):  # a click that lands as a rerun ends can be dropped: click again
            try:
                page.wait_for_function(_STARTED_AFTER, arg=before, timeout=15_000, polling=10)
                break
            except PlaywrightTimeout:
                act()
        page.wait_for_function(_SETTLED_AFTER, arg=before, timeout=TIMEOUT_MS, polling=10)
    expect(shows.first).to_be_visible(timeout=TIMEOUT_MS)
    return time.perf_counter() - started


def heading(page: Page, text: str) -> Locator:
    return page.get_by_role("heading", name=text, exact=True)


def nav_link(page: Page, title: str) -> Locator:
    return page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True)


def open_page(page: Page, title: str, shows: Locator | None = None) -> float:
    """Click the page's sidebar link; the page is there when its title heading shows."""
    return timed_click(page, nav_link(page, title).click, shows or heading(page, title))


def choose(page: Page, label: str, option: str) -> Callable[[], None]:
    """Open the selectbox labelled ``label``; returns the click that picks ``option``.

    A click that lands while the page redraws can leave the list closed, so a person
    clicks again; so does this (not timed: the clock starts at the pick).
    """
    box = page.get_by_role("combobox", name=label, exact=True)
    choice = page.get_by_role("option", name=re.compile(rf"^{re.escape(option)}$")).first
    for _ in range(5):
        settled(page)
        box.click()
        try:
            expect(choice).to_be_visible(timeout=5_000)
            break
        except AssertionError:
            page.keyboard.press("Escape")
    expect(choice).to_be_visible(timeout=TIMEOUT_MS)
    return choice.click


def sign_in(page: Page, base: str, username: str, password: str) -> None:
    page.goto(base + "/")
    form = page.get_by_test_id("stForm")
    expect(form.get_by_role("heading", name="Sign in to Switchboard")).to_be_visible(
        timeout=TIMEOUT_MS
    )
    settled(page)
    form.get_by_label("Username", exact=True).fill(username)
    form.get_by_label("Password", exact=True).fill(password)
    form.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(r"^Hello, ")).first).to_be_visible(
        timeout=TIMEOUT_MS
    )
    settled(page)
    # The sign-in cookie's component reruns the app once more; let it finish.
    deadline = time.monotonic() + 30
    while not any(c["name"] == "switchboard_auth" for c in page.context.cookies()):
        if time.monotonic() > deadline:
            break
        page.wait_for_timeout(100)
    settled(page)
