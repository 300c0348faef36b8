"""End to end in a real browser: sign in, chat with a fake provider, see the streamed answer.

The fake OpenAI server runs in the test process on loopback; the app (a real
`streamlit run` subprocess) reaches it through a base-URL override stored in the
database and an OPENAI_API_KEY in its environment, as an admin would set it up.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session, sessionmaker

from core.clock import utc_now
from core.money.catalog import load_catalog
from core.settings import endpoints
from tests.browser.test_signin_browser import PASSWORD, open_page, settled, sign_in
from tests.fakes import FakeOpenAI, Reply

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

ANSWER = ["Hello ", "from ", "the ", "**fake** ", "provider."]


def open_chat(page: Page) -> None:
    open_page(page, "Chat", "chat")


def test_member_chats_and_sees_the_streamed_answer_and_badge(
    page: Page,
    start_app: Callable[[], str],
    cli_add_user: Callable[..., None],
    sessions: sessionmaker[Session],
    artifacts: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cli_add_user("carol", PASSWORD, role="member", name="Carol Member")
    with FakeOpenAI() as fake:
        fake.configure("gpt-4o-mini", default=Reply(tokens=ANSWER, token_delay=0.05))
        with sessions.begin() as s:
            endpoints.add_endpoint(
                s,
                name="openai",
                kind="override",
                api_base=fake.base_url,
                models=(),
                actor="test",
                now=utc_now(),
                builtin_providers=load_catalog().providers(),
            )
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-browser-key-0003")
        base = start_app()
        page.goto(base + "/")  # a first run imports litellm: slow on a busy machine
        form = page.get_by_test_id("stForm")
        heading = form.get_by_role("heading", name="Sign in to Switchboard")
        expect(heading).to_be_visible(timeout=120_000)

        sign_in(page, base, "carol", PASSWORD)
        open_chat(page)
        expect(page.get_by_role("heading", name="Chat", exact=True).first).to_be_visible()
        expect(page.get_by_text(re.compile(r"^Next message: about \$")).first).to_be_visible()
        settled(page)

        box = page.get_by_test_id("stChatInputTextArea")
        box.fill("Say hello to the team")
        box.press("Enter")

        answer = page.get_by_test_id("stChatMessage").filter(has_text="fake")
        # Generous: the server's first call imports litellm, slow on a loaded machine.
        expect(answer.first).to_contain_text("Hello from the fake provider.", timeout=90_000)
        expect(answer.first.locator("strong", has_text="fake")).to_be_visible()  # markdown
        expect(
            page.get_by_text(re.compile(r"^gpt-4o-mini · \d+ in / \d+ out · \$")).first
        ).to_be_visible()
        settled(page)
        # The conversation is listed in the sidebar with its auto title.
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar.get_by_role("button", name="Say hello to the team")).to_be_visible()
        page.screenshot(path=str(artifacts / "chat.png"), full_page=True)
        assert fake.count("gpt-4o-mini") == 1

        # Stop a slow answer part-way: the partial text stays, marked stopped.
        fake.script("gpt-4o-mini", Reply(tokens=[f"word{i} " for i in range(60)], token_delay=0.15))
        box.fill("Tell me a long story")
        box.press("Enter")
        expect(page.get_by_text(re.compile(r"word3 ")).first).to_be_visible()
        page.get_by_role("button", name="Stop").click()
        expect(page.get_by_text(re.compile(r"Stopped\. The text above")).first).to_be_visible()
        settled(page)
        stopped = page.get_by_test_id("stChatMessage").filter(has_text="word0")
        expect(stopped.first).to_contain_text("word3")
        expect(stopped.first).not_to_contain_text("word59")
        page.screenshot(path=str(artifacts / "chat-stopped.png"), full_page=True)
