"""Issue 21 parts 4 and 5 in a real browser, each in the role that meets it.

Admin: a save on Admin keeps its tab; a refused new user keeps what was typed.
Manager: the price advice names Admin → Prices; Home shows the team's spend and alerts.
Member: Home, one spent figure on My account, the route in force on Model preferences,
Ollama without a server, and one day of analytics with sensible axes.

Data is written through core into the test's SQLite file before `streamlit run app.py`
starts on it; screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from core.accounts import auth
from core.chat import conversations
from core.clock import utc_now
from core.compare import comparisons
from core.compare.rounds import RoundSettings
from core.money import budgets
from core.money.reservations import reserve, settle
from core.settings import routes
from core.store.tables import ORG_OWNER_ID, Team
from tests.browser.test_signin_browser import PASSWORD, open_page, settled, sign_in
from tests.conftest import add_user
from tests.gateway_support import HAIKU, MINI
from tests.support.ledger_rows import insert, request_row

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]
FIRST_RUN_MS = 120_000


def _spend(sessions, user_id: int, micros: int, rid: str) -> None:
    with sessions() as s:
        who = auth.caller_for(s, user_id)
    now = utc_now()
    handle = reserve(sessions, request_id=rid, caller=who, amounts={"openai": micros}, now=now)
    settle(sessions, handle, {"openai": micros}, now)


def _start(page: Page, start_app: Callable[[], str]) -> str:
    """Start the app and wait out its first run (litellm's import is slow on a busy machine)."""
    base = start_app()
    page.goto(base + "/")
    heading = page.get_by_role("heading", name="Sign in to Switchboard")
    expect(heading).to_be_visible(timeout=FIRST_RUN_MS)
    return base


def _metric(page: Page, label: str):
    return page.get_by_test_id("stMetric").filter(has_text=label).first


def test_admin_keeps_the_tab_after_a_save_and_the_typed_user(
    page: Page, start_app: Callable[[], str], sessions, artifacts: Path
) -> None:
    add_user(sessions, "root", "admin", password=PASSWORD)
    base = _start(page, start_app)
    sign_in(page, base, "root", PASSWORD)
    open_page(page, "Admin", "admin")
    settled(page)
    page.get_by_role("tab", name="Prices").click()
    expect(page).to_have_url(re.compile(r"tab=Prices"))
    settled(page)
    page.get_by_label("Model id").fill(MINI)
    page.get_by_label("Input $ per 1M tokens").fill("0.20")
    page.get_by_label("Output $ per 1M tokens").fill("0.80")
    page.get_by_role("button", name="Save price").click()
    expect(page.get_by_test_id("stToast").filter(has_text=f"Price for {MINI}")).to_be_visible()
    settled(page)
    expect(page.get_by_role("tab", name="Prices")).to_have_attribute("aria-selected", "true")
    expect(page).to_have_url(re.compile(r"tab=Prices"))
    page.screenshot(path=str(artifacts / "dashboard-admin-prices-kept.png"), full_page=True)

    open_page(page, "Users", "users")
    settled(page)
    page.get_by_text("Add a user").click()
    form = page.get_by_test_id("stForm")
    form.get_by_role("textbox", name="Username", exact=True).fill("dora")
    form.get_by_role("textbox", name="Display name", exact=True).fill("Dora Explorer")
    form.get_by_role("textbox", name="Team (optional)", exact=True).fill("Maps")
    form.get_by_role("textbox", name="Initial password", exact=True).fill("short")
    form.get_by_role("button", name="Add user").click()
    expect(page.get_by_text(re.compile("too short")).first).to_be_visible()
    settled(page)
    expect(form.get_by_role("textbox", name="Username", exact=True)).to_have_value("dora")
    expect(form.get_by_role("textbox", name="Display name", exact=True)).to_have_value(
        "Dora Explorer"
    )
    expect(form.get_by_role("textbox", name="Team (optional)", exact=True)).to_have_value("Maps")
    page.screenshot(path=str(artifacts / "dashboard-users-kept.png"), full_page=True)


def test_manager_sees_team_spend_alerts_and_the_right_price_advice(
    page: Page, start_app: Callable[[], str], sessions, artifacts: Path
) -> None:
    bea = add_user(sessions, "bea", "manager", team="Ops", password=PASSWORD)
    wes = add_user(sessions, "wes", "member", team="Ops")
    with sessions() as s:
        ops = s.scalar(select(Team.id).where(Team.name == "Ops"))
    at = utc_now() - timedelta(minutes=20)
    insert(
        sessions,
        request_row(at, user_id=wes.id, username="wes", team_id=ops, cost_micros=2_000_000),
        request_row(at, user_id=bea.id, username="bea", team_id=ops, cost_micros=500_000),
        request_row(
            at,
            user_id=wes.id,
            username="wes",
            team_id=ops,
            cost_micros=None,
            served_model="corp/llama",
            provider="corp",
        ),
    )
    with sessions.begin() as s:
        budgets.set_budget(s, "team", str(ops), 2_000_000, False, "root", utc_now())
    _spend(sessions, wes.id, 1_980_000, "t")
    base = _start(page, start_app)
    sign_in(page, base, "bea", PASSWORD)
    expect(page.get_by_text("Spend and alerts: team Ops").first).to_be_visible()
    expect(page.get_by_text("team Ops is at 99%").first).to_be_visible()
    advice = "Ask an admin to set its price (Admin → Prices)."
    expect(page.get_by_text(advice).first).to_be_visible()
    settled(page)
    page.screenshot(path=str(artifacts / "dashboard-home-manager.png"), full_page=True)

    open_page(page, "Analytics", "analytics")
    settled(page)
    page.get_by_text("Budgets & alerts", exact=True).click()
    expect(page.get_by_text(advice).first).to_be_visible()
    expect(page.get_by_text("Models page")).to_have_count(0)
    settled(page)
    page.screenshot(path=str(artifacts / "dashboard-analytics-manager-alerts.png"), full_page=True)


def test_member_home_account_preferences_providers_and_one_day_of_charts(
    page: Page,
    start_app: Callable[[], str],
    sessions,
    artifacts: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai-key-0001")  # the server's key
    monkeypatch.delenv("OLLAMA_API_BASE", raising=False)
    mia = add_user(sessions, "mia", "member", team="Ops", password=PASSWORD)
    now = utc_now()
    with sessions.begin() as s:
        routes.set_route(
            s,
            scope="org",
            scope_id=ORG_OWNER_ID,
            models=[MINI, HAIKU],
            known_model=lambda m: True,
            actor="root",
            now=now,
        )
        conversations.create(
            s, user_id=mia.id, title="Trip plan", model=MINI, task="chat", settings={}, now=now
        )
        budgets.set_budget(s, "user", str(mia.id), 20_000_000, True, "root", now)
        me = auth.caller_for(s, mia.id)
        comparisons.create_session(
            s, me, RoundSettings(models=(MINI, HAIKU)), title="Haiku vs mini", now=now
        )
    _spend(sessions, mia.id, 19_800_000, "a")
    # One day of usage, tiny amounts: the axes that used to read "23:59:59.999" and "μ".
    insert(
        sessions,
        request_row(now - timedelta(minutes=40), user_id=mia.id, username="mia", cost_micros=7_300),
        request_row(
            now - timedelta(minutes=30),
            user_id=mia.id,
            username="mia",
            cost_micros=3_100,
            provider="anthropic",
            served_model=HAIKU,
        ),
    )
    base = _start(page, start_app)
    sign_in(page, base, "mia", PASSWORD)
    expect(page.get_by_text("Your spend this month").first).to_be_visible()
    expect(_metric(page, "Spent this month")).to_contain_text("$19.80")
    expect(page.get_by_text("99% of your $20.00 budget used").first).to_be_visible()
    expect(page.get_by_text("Trip plan").first).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("Haiku vs mini"))).to_be_visible()
    expect(page.get_by_text("Provider health for you").first).to_be_visible()
    expect(page.get_by_text("Spend and alerts")).to_have_count(0)
    settled(page)
    page.screenshot(path=str(artifacts / "dashboard-home-member.png"), full_page=True)

    open_page(page, "My account", "account")
    expect(_metric(page, "Spent this month")).to_contain_text("$19.80")
    expect(_metric(page, "Budget left")).to_contain_text("$0.20")
    expect(page.get_by_text(re.compile(r"spent \$", re.IGNORECASE))).to_have_count(0)
    settled(page)
    page.screenshot(path=str(artifacts / "dashboard-account-member.png"), full_page=True)

    open_page(page, "Model preferences", "preferences")
    expect(page.get_by_text(re.compile("the organisation's default route")).first).to_be_visible()
    expect(page.get_by_text("No chain yet")).to_have_count(0)
    picker = page.get_by_test_id("stSelectbox").filter(has_text="Default model").first
    expect(picker.get_by_role("combobox")).to_have_value(re.compile(r"^openai · gpt-4o-mini · "))
    settled(page)
    page.screenshot(path=str(artifacts / "dashboard-preferences-in-force.png"), full_page=True)

    open_page(page, "Providers & keys", "providers")
    expect(page.get_by_text(re.compile(r"Unavailable for you: .*Ollama")).first).to_be_visible()
    settled(page)
    page.screenshot(path=str(artifacts / "dashboard-providers-ollama.png"), full_page=True)

    open_page(page, "Analytics", "analytics")
    charts = page.get_by_test_id("stPlotlyChart")
    expect(charts.first.locator(".main-svg").first).to_be_visible()
    settled(page)
    page.wait_for_timeout(800)  # Plotly finishes drawing its ticks
    ticks = charts.first.locator(".xtick text, .ytick text").all_text_contents()
    assert ticks and not any("μ" in t or ":59.999" in t or t.startswith("-$") for t in ticks)
    assert any(t.startswith("$0.0") for t in ticks), ticks
    page.screenshot(path=str(artifacts / "dashboard-analytics-one-day.png"), full_page=True)
    charts.first.screenshot(path=str(artifacts / "dashboard-chart-cost-one-day.png"))
