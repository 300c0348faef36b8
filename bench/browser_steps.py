"""The browser benchmark's interactions, each appending its seconds to ``samples``."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence

from playwright.sync_api import Locator, Page, expect

from bench.browser_clicks import TIMEOUT_MS, choose, heading, nav_link, open_page, timed_click
from bench.browser_seed import TASKS

Samples = dict[str, list[float]]


def _add(samples: Samples, name: str, seconds: float) -> None:
    samples.setdefault(name, []).append(seconds)
    print(f"    {name}: {seconds * 1000:.0f} ms", file=sys.stderr, flush=True)


def _title(page: Page, title: str) -> Locator:
    if title == "Home":
        return page.get_by_role("heading", name=re.compile(r"^Hello, "))
    return heading(page, title)


def page_opens(page: Page, samples: Samples, titles: Sequence[str]) -> None:
    for title in titles:
        _add(samples, f"open {title}", open_page(page, title, _title(page, title)))


def _selected(page: Page, label: str, value: str) -> Locator:
    """The selectbox (a combobox) showing ``value``; the settled run after the pick is
    the one that drew the page for it."""
    del value  # shown at once by the browser; the run it starts is what is timed
    return page.get_by_role("combobox", name=label, exact=True)


def _pick(page: Page, samples: Samples, name: str, label: str, value: str) -> None:
    _add(
        samples, name, timed_click(page, choose(page, label, value), _selected(page, label, value))
    )


def _radio(page: Page, label: str) -> Callable[[], None]:
    return page.get_by_test_id("stRadio").get_by_text(label, exact=True).first.click


def analytics_changes(page: Page, samples: Samples) -> None:
    """Filters one after another, a view change and back, then the filters cleared."""
    open_page(page, "Analytics")
    _pick(page, samples, "analytics: provider filter", "Provider", "openai")
    _pick(page, samples, "analytics: task filter", "Task", "summarise")
    _pick(page, samples, "analytics: date range", "Date range", "Last 7 days")
    models = page.get_by_role("heading", name="Model performance")
    _add(samples, "analytics: view change", timed_click(page, _radio(page, "Models"), models))
    users = page.get_by_role("heading", name="Cost by user")
    _add(samples, "analytics: view change", timed_click(page, _radio(page, "Overview"), users))
    _add(samples, "analytics: chart option", timed_click(page, _radio(page, "model"), users))
    _add(samples, "analytics: chart option", timed_click(page, _radio(page, "provider"), users))
    _pick(page, samples, "analytics: provider filter", "Provider", "All")
    _pick(page, samples, "analytics: task filter", "Task", "All")
    _pick(page, samples, "analytics: date range", "Date range", "Last 30 days")


def leaderboard_after_vote(page: Page, samples: Samples, vote: Callable[[], None]) -> None:
    """A vote is stored (as the Compare page would), then the leaderboard is opened."""
    open_page(page, "Home", _title(page, "Home"))
    vote()
    table = page.get_by_test_id("stDataFrame")
    _add(samples, "leaderboard: open after a vote", open_page(page, "Leaderboard", table))
    task = TASKS[len(samples["leaderboard: open after a vote"]) % len(TASKS)]
    _add(
        samples,
        "leaderboard: task filter",
        timed_click(page, choose(page, "Task", task), _selected(page, "Task", task)),
    )


def preference_edits(page: Page, samples: Samples, run: int) -> None:
    """Add a model to the fallback chain and save; then take it out again (not timed)."""
    if not heading(page, "Model preferences").first.is_visible():
        open_page(page, "Model preferences")
    box = page.get_by_test_id("stSelectbox").filter(has=page.get_by_text("Add a model", exact=True))
    box.first.click()
    option = page.get_by_role("option").nth(run % 5)
    expect(option).to_be_visible(timeout=TIMEOUT_MS)
    name = option.inner_text().strip()
    option.click()
    add = page.get_by_role("button", name="Add", exact=True)
    # The chain's "N. <label>" lines are markdown, drawn as list items (and a "$" in
    # the price may render as maths): match the provider and model part of the label.
    short = " · ".join(name.split(" · ")[:2])
    listed = page.get_by_role("listitem").filter(has_text=short)
    _add(samples, "preferences: add a model", timed_click(page, add.click, listed))
    save = page.get_by_role("button", name="Save chain", exact=True)
    saved = page.get_by_text("Fallback chain saved.")
    _add(samples, "preferences: save the chain", timed_click(page, save.click, saved))
    remove = page.get_by_role("button", name="✕").last
    timed_click(page, remove.click, heading(page, "Fallback chain"))
    timed_click(page, save.click, saved)


def chat_first_token(page: Page, samples: Samples, run: int) -> None:
    """Send a message; the clock stops when the fake's first token is on screen."""
    if not heading(page, "Chat").first.is_visible():
        nav_link(page, "Chat").click()
        expect(heading(page, "Chat").first).to_be_visible(timeout=TIMEOUT_MS)
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(f"Question number {run} for the benchmark")
    answers = page.get_by_test_id("stChatMessage").filter(has_text="Bonjour")
    before = answers.count()
    first = answers.nth(before)
    _add(
        samples,
        "chat: send, first token",
        timed_click(page, lambda: box.press("Enter"), first, settle=False),
    )
    expect(answers.nth(before)).to_contain_text("fake.", timeout=TIMEOUT_MS)
