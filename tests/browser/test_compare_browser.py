"""In a real browser: a blind comparison round against a fake provider, a vote, the reveal."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from core.clock import utc_now
from core.money.catalog import load_catalog
from core.settings import endpoints
from tests.browser.test_signin_browser import open_page, settled, sign_in
from tests.conftest import PASSWORD, add_user
from tests.fakes import FakeOpenAI, Reply

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

MODELS = ("openai/gpt-4o", "openai/gpt-4o-mini")


@pytest.fixture
def fake_openai(sessions, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    """A fake OpenAI the app reaches through a base-URL override and an environment key."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai-key-0001")
    with FakeOpenAI() as fake:
        fake.configure("gpt-4o", tokens=["Paris ", "is ", "the ", "capital."])
        fake.configure(
            "gpt-4o-mini", default=Reply(tokens=["It ", "is ", "Paris."], token_delay=0.05)
        )
        with sessions.begin() as s:
            endpoints.add_endpoint(
                s,
                name="openai",
                kind="override",
                api_base=fake.base_url,
                actor="test",
                now=utc_now(),
                builtin_providers=load_catalog().providers(),
            )
        yield fake


def pick_model(page: Page, model: str) -> None:
    box = page.get_by_test_id("stMultiSelect").first
    box.locator("input").first.click()
    box.locator("input").first.fill(model)
    page.get_by_role("option", name=f"{model} · ").first.click()  # substring: the id, then tier
    page.keyboard.press("Escape")


def test_blind_round_vote_and_reveal(
    page: Page, sessions, fake_openai: FakeOpenAI, start_app: Callable[[], str], artifacts: Path
) -> None:
    add_user(sessions, "dana", "member", team="red")
    base = start_app()
    sign_in(page, base, "dana", PASSWORD)
    open_page(page, "Compare", "compare")
    expect(page.get_by_role("heading", name="Compare", exact=True).first).to_be_visible()
    settled(page)

    for model in MODELS:
        pick_model(page, model)
        settled(page)
    prompt = page.get_by_label("Prompt", exact=True)
    prompt.fill("What is the capital of France?")
    prompt.press("Control+Enter")
    expect(page.get_by_text(re.compile(r"^Estimated cost of this round: \$")).first).to_be_visible()
    settled(page)
    page.get_by_role("button", name="Send to all models").click()

    expect(page.get_by_role("heading", name="Model A").first).to_be_visible()
    expect(page.get_by_role("button", name="Vote", exact=True)).to_be_visible()
    settled(page)
    for model in MODELS:  # blind: no model name anywhere on the page yet
        expect(page.get_by_text(model, exact=False)).to_have_count(0)
    expect(page.get_by_text("Paris is the capital.").first).to_be_visible()
    page.screenshot(path=str(artifacts / "compare-blind-round.png"), full_page=True)

    page.get_by_text("A is best", exact=True).click()
    page.get_by_label("Comment (optional)").fill("straight to the point")
    page.get_by_role("button", name="Vote", exact=True).click()

    expect(page.get_by_text("Vote saved.").first).to_be_visible()
    # Revealed: A is one of the two models (random order), named in its heading.
    expect(page.get_by_role("heading", name="A · openai/gpt-4o").first).to_be_visible()
    expect(page.get_by_role("button", name="Replace my vote")).to_be_visible()
    settled(page)
    page.screenshot(path=str(artifacts / "compare-revealed.png"), full_page=True)
    assert fake_openai.count() == 2
