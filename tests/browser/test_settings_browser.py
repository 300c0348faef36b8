"""In a real browser: sign in, add a key, set a default model, and switch profiles."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_signin_browser import PASSWORD, open_page, settled, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

KEY = "sk-browser-test-key-00009999"


def test_add_a_key_and_set_a_default_model(
    page: Page, start_app: Callable[[], str], cli_add_user: Callable[..., None], artifacts: Path
) -> None:
    cli_add_user("carol", PASSWORD, role="member", name="Carol Member")
    base = start_app()
    sign_in(page, base, "carol", PASSWORD)

    open_page(page, "Providers & keys", "providers")
    settled(page)
    form = page.get_by_test_id("stForm")
    form.get_by_label("API key").fill(KEY)
    form.get_by_role("button", name="Save key").click()
    expect(page.get_by_text("Saved your openai key sk-…9999").first).to_be_visible()
    settled(page)
    expect(page.get_by_text(KEY)).to_have_count(0)
    page.screenshot(path=str(artifacts / "settings-providers.png"), full_page=True)

    open_page(page, "Model preferences", "preferences")
    settled(page)
    picker = page.get_by_test_id("stSelectbox").filter(has_text="Default model").first
    picker.click()
    page.keyboard.type("gpt-4o-mini")
    page.get_by_role("option", name=re.compile(r"^openai · gpt-4o-mini · ")).first.click()
    settled(page)
    page.get_by_role("button", name="Save default model").click()
    expect(page.get_by_text("Default model saved: openai/gpt-4o-mini").first).to_be_visible()
    settled(page)
    expect(page.get_by_text(re.compile(r"^Saved: openai · gpt-4o-mini · ")).first).to_be_visible()
    page.screenshot(path=str(artifacts / "settings-preferences.png"), full_page=True)
