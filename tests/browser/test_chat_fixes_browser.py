"""Chat as a member meets it, in a real browser (issue 21, part 3): Stop, Task, the picker.

The fake OpenAI and Anthropic servers run in the test process on loopback; the app (a
real `streamlit run` subprocess) reaches them through base-URL overrides and provider
keys in its environment, as an admin would set it up. Routes and endpoints are written
to the app's database before it starts; the ledger is read back from that database.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import utc_now
from core.money.catalog import load_catalog
from core.settings import endpoints
from core.store.tables import AttemptRow, ChatMessage, RequestRow
from tests.browser.test_signin_browser import PASSWORD, open_page, settled, sign_in
from tests.fakes import Reply
from tests.support.pages import AppFakes, app_fakes, org_route

__all__ = ["app_fakes"]  # the fixture, shared with the AppTests

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

GPT = "openai/gpt-4o"
MINI = "openai/gpt-4o-mini"
HAIKU = "anthropic/claude-3-haiku-20240307"
# Generous: the server's first call imports litellm, slow on a loaded machine.
FIRST_ANSWER_MS = 90_000


def start_signed_in(page: Page, start_app: Callable[[], str]) -> None:
    """Start the app, wait out its first (slow) render, sign carol in and open Chat."""
    base = start_app()
    sign_in(page, base, "carol", PASSWORD)  # waits out the first run's imports
    open_page(page, "Chat", "chat")


def model_box(page: Page) -> Locator:
    return page.get_by_role("combobox", name="Model", exact=True)


def shows(page: Page, label_start: str) -> None:
    """The picker's visible choice starts with ``label_start``."""
    expect(model_box(page)).to_have_value(re.compile("^" + re.escape(label_start)))


def choose(page: Page, label: str, typed: str, option: re.Pattern[str]) -> None:
    """Open a selectbox, type, click the option. A click that lands while a rerun redraws
    the box closes the list; a person would open it again, so the test does too."""
    for _ in range(3):
        settled(page)
        page.get_by_test_id("stSelectbox").filter(has_text=label).first.click()
        page.keyboard.type(typed)
        try:
            page.get_by_role("option", name=option).first.click(timeout=10_000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    else:
        pytest.fail(f"no option {option.pattern!r} in {label!r} after three tries")
    settled(page)


def ask(page: Page, text: str) -> None:
    settled(page)
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(text)
    box.press("Enter")


def answers(page: Page) -> Locator:
    return page.get_by_test_id("stChatMessage").filter(
        has=page.get_by_test_id("stChatMessageAvatarAssistant")
    )


def ledger_rows(sessions: sessionmaker[Session], count: int) -> list[RequestRow]:
    """The app's background writer lands rows a moment after the answer; wait for them."""
    deadline = time.monotonic() + 30
    while True:
        with sessions() as s:
            rows = list(s.scalars(select(RequestRow).order_by(RequestRow.at)))
            for r in rows:
                s.expunge(r)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_member_stops_three_times_and_keeps_badges_and_the_pickers_model(
    page: Page,
    start_app: Callable[[], str],
    cli_add_user: Callable[..., None],
    sessions: sessionmaker[Session],
    app_fakes: AppFakes,
    artifacts: Path,
) -> None:
    openai, anthropic = app_fakes.openai, app_fakes.anthropic
    cli_add_user("carol", PASSWORD, role="member", name="Carol Member")
    org_route(sessions, [GPT, HAIKU])
    openai.configure("gpt-4o", tokens=[f"word{i} " for i in range(60)])
    start_signed_in(page, start_app)
    shows(page, "openai · gpt-4o (")
    expect(page.get_by_text("Your route for this task falls back to").first).to_be_visible()

    for i in range(1, 4):
        openai.script("gpt-4o", Reply(token_delay=0.15))
        ask(page, f"Tell me a long story, part {i}")
        expect(answers(page).nth(i - 1)).to_contain_text("word3", timeout=FIRST_ANSWER_MS)
        page.get_by_role("button", name="Stop").click()
        expect(page.get_by_text(re.compile(r"Stopped\. The text above"))).to_have_count(i)
        settled(page)

    # Each stopped answer keeps its badge: model, tokens in/out, cost.
    badges = page.get_by_text(re.compile(r"^gpt-4o · \d+ in / \d+ out · \$[\d.]+ · "))
    expect(badges).to_have_count(3)
    stopped = answers(page).first
    expect(stopped).not_to_contain_text("word59")
    # The conversation's total stays priced.
    sidebar = page.get_by_test_id("stSidebar")
    expect(
        sidebar.get_by_text(re.compile(r"tokens \(\d+ in / \d+ out\) · \$")).first
    ).to_be_visible()
    expect(sidebar.get_by_text("unpriced")).to_have_count(0)
    page.screenshot(path=str(artifacts / "chat-three-stops.png"), full_page=True)

    rows = ledger_rows(sessions, 3)
    assert [r.status for r in rows] == ["stopped"] * 3
    assert all(r.served_model == GPT and r.priced and r.cost_micros for r in rows)
    with sessions() as s:
        outcomes = set(s.scalars(select(AttemptRow.outcome)))
        kept = s.scalars(select(ChatMessage).where(ChatMessage.role == "assistant")).all()
        assert all(m.status == "stopped" and m.model == GPT for m in kept)
    assert outcomes == {"stopped"}  # a Stop is never a provider failure

    # The key is not paused: the next answer comes from the picker's model, no fallback.
    openai.script("gpt-4o", Reply(tokens=["The ", "whole ", "answer."]))
    ask(page, "Now answer in full")
    expect(answers(page).nth(3)).to_contain_text("The whole answer.", timeout=FIRST_ANSWER_MS)
    settled(page)
    expect(answers(page).nth(3)).to_contain_text("gpt-4o · ")
    expect(page.get_by_test_id("stAlert").filter(has_text="answered by")).to_have_count(0)
    shows(page, "openai · gpt-4o (")
    assert anthropic.count() == 0
    last = ledger_rows(sessions, 4)[-1]
    assert (last.status, last.served_model, last.requested_model) == ("success", GPT, "auto")
    page.screenshot(path=str(artifacts / "chat-after-stops.png"), full_page=True)


def test_member_changes_task_and_the_picker_follows_its_route(
    page: Page,
    start_app: Callable[[], str],
    cli_add_user: Callable[..., None],
    sessions: sessionmaker[Session],
    app_fakes: AppFakes,
    artifacts: Path,
) -> None:
    openai, anthropic = app_fakes.openai, app_fakes.anthropic
    cli_add_user("carol", PASSWORD, role="member", name="Carol Member")
    org_route(sessions, [MINI])
    org_route(sessions, [HAIKU, MINI], task="code")
    anthropic.configure("claude-3-haiku-20240307", tokens=["def ", "hello(): ", "pass"])
    start_signed_in(page, start_app)
    shows(page, "openai · gpt-4o-mini (")
    # Nothing typed yet: the estimate names no "prompt tokens so far".
    estimate = page.get_by_text(re.compile(r"^Next message: about \$")).first
    expect(estimate).to_be_visible()
    expect(estimate).not_to_contain_text("tokens so far")

    choose(page, "Task", "code", re.compile(r"^code$"))
    shows(page, "anthropic · claude-3-haiku-20240307 (")
    page.screenshot(path=str(artifacts / "chat-task-code.png"), full_page=True)
    ask(page, "Write a hello function")
    expect(answers(page).first).to_contain_text("def hello(): pass", timeout=FIRST_ANSWER_MS)
    settled(page)
    shows(page, "anthropic · claude-3-haiku-20240307 (")
    [row] = ledger_rows(sessions, 1)
    # Sent as "auto" under the code task, so the code route applied.
    assert (row.task, row.requested_model, row.served_model) == ("code", "auto", HAIKU)
    assert openai.count() == 0
    expect(page.get_by_text(re.compile(r"\(\d+ prompt tokens so far\)")).first).to_be_visible()

    choose(page, "Task", "chat", re.compile(r"^chat$"))
    shows(page, "openai · gpt-4o-mini (")


def test_member_picks_an_admin_endpoint_model_and_sees_usable_models_first(
    page: Page,
    start_app: Callable[[], str],
    cli_add_user: Callable[..., None],
    sessions: sessionmaker[Session],
    app_fakes: AppFakes,
    artifacts: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    openai = app_fakes.openai
    monkeypatch.delenv("ANTHROPIC_API_KEY")  # carol can use OpenAI and the endpoint only
    cli_add_user("carol", PASSWORD, role="member", name="Carol Member")
    with sessions.begin() as s:
        endpoints.add_endpoint(
            s,
            name="lab",
            kind="openai-compatible",
            api_base=openai.base_url,
            models=("llama3",),
            actor="test",
            now=utc_now(),
            builtin_providers=load_catalog().providers(),
        )
    openai.configure("llama3", tokens=["Hello ", "from ", "the ", "lab."])
    start_signed_in(page, start_app)
    expect(page.get_by_text(re.compile(r"more need a key you don't have")).first).to_be_visible()

    settled(page)
    page.get_by_test_id("stSelectbox").filter(has_text="Model").first.click()
    page.keyboard.type("claude-3-haiku")
    # No Anthropic key: its models are not offered.
    expect(page.get_by_role("option", name=re.compile("claude-3-haiku"))).to_have_count(0)
    page.keyboard.press("Escape")
    settled(page)
    choose(page, "Model", "lab/", re.compile(r"^lab\/llama3 · admin endpoint$"))
    shows(page, "lab/llama3 · admin endpoint")
    page.screenshot(path=str(artifacts / "chat-endpoint-model.png"), full_page=True)
    ask(page, "Hello lab")
    expect(answers(page).first).to_contain_text("Hello from the lab.", timeout=FIRST_ANSWER_MS)
    expect(page.get_by_text(re.compile(r"^llama3 · \d+ in / \d+ out · ")).first).to_be_visible()
    [row] = ledger_rows(sessions, 1)
    assert (row.served_model, row.provider) == ("lab/llama3", "lab")

    # Asked for, models without a key come after the usable ones, marked "no key".
    page.get_by_test_id("stCheckbox").get_by_text("Show models without a key").click()
    settled(page)
    page.get_by_test_id("stSelectbox").filter(has_text="Model").first.click()
    page.keyboard.type("claude-3-haiku-20240307")
    expect(
        page.get_by_role(
            "option", name=re.compile(r"^anthropic · claude-3-haiku-20240307 .* no key$")
        )
    ).to_be_visible()
    page.screenshot(path=str(artifacts / "chat-no-key-models.png"), full_page=True)
