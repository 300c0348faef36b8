"""AppTest for issue 21 parts 4 and 5: Admin keeps its tab, forms keep what was typed,
Model preferences starts from the route in force, one spent figure, budget alerts and
price advice that read right, Ollama only with a server, charts and money for people,
and a Home page worth landing on."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.accounts import auth
from core.chat import conversations
from core.clock import utc_now
from core.compare import comparisons
from core.compare.rounds import RoundSettings
from core.money import budgets
from core.money.reservations import reserve, settle
from core.settings import routes
from core.store.tables import ORG_OWNER_ID, PriceOverride, Team, User
from tests.conftest import add_user
from tests.gateway_support import HAIKU, MINI
from tests.support.ledger_rows import insert, request_row
from tests.support.pages import notices, signed_in, texts
from ui import state

pytestmark = pytest.mark.timeout(240)


def _caller(sessions, username: str):
    with sessions() as s:
        user_id = s.scalar(select(User.id).where(User.username == username))
        return auth.caller_for(s, user_id)


def _spend(sessions, who, micros: int, rid: str) -> None:
    now = utc_now()
    handle = reserve(sessions, request_id=rid, caller=who, amounts={"openai": micros}, now=now)
    settle(sessions, handle, {"openai": micros}, now)


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


# --- part 4: Admin and settings ---------------------------------------------------------


def test_saving_on_admin_keeps_the_tab_it_was_saved_from(sessions):
    add_user(sessions, "root", "admin")
    at = signed_in("root")
    at.query_params["tab"] = "Prices"  # the tab is in the URL, so reloads and links keep it
    at.switch_page("app_pages/admin.py").run()
    assert at.session_state[state.ADMIN_TAB] == "Prices"
    at.text_input(key="price_model").set_value(MINI)
    at.text_input(key="price_in").set_value("0.20")
    at.text_input(key="price_out").set_value("0.80")
    at.button(key="FormSubmitter:price-Save price").click().run()
    assert not at.exception
    assert any(f"Price for {MINI}" in n for n in notices(at))
    assert at.session_state[state.ADMIN_TAB] == "Prices"  # not back on the first tab
    assert at.query_params["tab"] == "Prices"
    assert [t.value for t in at.toast]  # said as a toast: nothing above the tabs moves
    with sessions() as s:
        assert s.scalar(select(PriceOverride.model_id)) == MINI


def test_a_refused_new_user_keeps_every_field_and_a_success_clears_them(sessions):
    add_user(sessions, "root", "admin")
    at = signed_in("root", page="app_pages/users.py")
    typed = {
        "new_username": "dora",
        "new_name": "Dora Explorer",
        "new_email": "dora@example.com",
        "new_team": "Maps",
        "new_password": "short",
    }
    for key, value in typed.items():
        at.text_input(key=key).set_value(value)
    at.selectbox(key="new_role").set_value("manager")
    at.button(key="FormSubmitter:add_user-Add user").click().run()
    assert any("too short" in e.value for e in at.error)
    for key, value in typed.items():
        assert at.text_input(key=key).value == value  # nothing to type again
    assert at.selectbox(key="new_role").value == "manager"
    at.text_input(key="new_password").set_value("a-good-long-password")
    at.button(key="FormSubmitter:add_user-Add user").click().run()
    assert any("Added manager 'dora'" in s.value for s in at.success)
    assert all(at.text_input(key=k).value == "" for k in typed)  # ready for the next one
    with sessions() as s:
        assert s.scalar(select(User.role).where(User.username == "dora")) == "manager"


def test_preferences_start_from_the_organisation_route_in_force(sessions):
    add_user(sessions, "mia", "member")
    with sessions.begin() as s:
        routes.set_route(
            s,
            scope="org",
            scope_id=ORG_OWNER_ID,
            models=[MINI, HAIKU],
            known_model=lambda m: True,
            actor="root",
            now=utc_now(),
        )
    at = signed_in("mia", page="app_pages/preferences.py")
    assert not at.exception
    shown = texts(at)
    assert "No chain yet" not in shown
    assert f"the organisation's default route: {MINI} → {HAIKU}" in shown
    assert at.selectbox(key="default_model").value == MINI  # not the alphabetically first
    preview = next(d.value for d in at.dataframe if "What happens" in d.value.columns)
    assert list(preview["Model"]) == [MINI, HAIKU]


def test_preferences_say_when_no_route_applies(sessions):
    add_user(sessions, "mia", "member")
    at = signed_in("mia", page="app_pages/preferences.py")
    assert any("No route applies to you yet" in w.value for w in at.warning)


def test_my_account_shows_one_spent_figure(sessions):
    user = add_user(sessions, "mia", "member", team="Ops")
    # $3 of requests before the budget existed, $2.50 after: the card says one figure.
    insert(
        sessions,
        request_row(utc_now() - timedelta(minutes=5), user_id=user.id, cost_micros=3_000_000),
    )
    with sessions.begin() as s:
        budgets.set_budget(s, "user", str(user.id), 10_000_000, True, "root", utc_now())
    _spend(sessions, _caller(sessions, "mia"), 2_500_000, "a")
    at = signed_in("mia", page="app_pages/account.py")
    assert _metric(at, "Spent this month") == "$2.50"
    assert _metric(at, "Budget left") == "$7.50"  # spent + left = the limit
    shown = texts(at)
    assert "spent $" not in shown.lower() and "$3.00" not in shown
    assert "Budget $10.00 a month (hard: requests stop)" in shown


def test_a_budget_at_99_percent_is_not_announced_as_reached_80(sessions):
    add_user(sessions, "mia", "member")
    mia = _caller(sessions, "mia")
    with sessions.begin() as s:
        budgets.set_budget(s, "user", str(mia.user_id), 10_000_000, False, "root", utc_now())
    _spend(sessions, mia, 9_900_000, "a")
    at = signed_in("mia")
    at.query_params["view"] = "Budgets & alerts"
    at.switch_page("app_pages/analytics.py").run()
    alerts = [w.value for w in at.warning if "budget" in w.value]
    assert alerts and all("reached 80%" not in a for a in alerts)
    assert any("is at 99% ($9.90 of $10.00" in a and "past the 80% warning" in a for a in alerts)


@pytest.mark.parametrize(
    ("role", "advice"),
    [
        ("manager", "Ask an admin to set its price (Admin → Prices)."),
        ("admin", "Set its price on Admin → Prices."),
    ],
)
def test_unpriced_model_advice_names_admin_prices_for_each_role(sessions, role, advice):
    user = add_user(sessions, "pat", role, team="Ops")
    with sessions() as s:
        team_id = s.scalar(select(Team.id).where(Team.name == "Ops"))
    insert(
        sessions,
        request_row(
            utc_now() - timedelta(minutes=5),
            user_id=user.id,
            username="pat",
            team_id=team_id,
            served_model="corp/llama",
            provider="corp",
            cost_micros=None,
        ),
    )
    at = signed_in("pat")
    at.query_params["view"] = "Budgets & alerts"
    at.switch_page("app_pages/analytics.py").run()
    shown = texts(at)
    assert advice in shown and "Models page" not in shown


def test_providers_page_offers_ollama_only_with_a_server(sessions, monkeypatch):
    add_user(sessions, "mia", "member")
    monkeypatch.delenv("OLLAMA_API_BASE", raising=False)
    at = signed_in("mia", page="app_pages/providers.py")
    [row] = [r for r in at.dataframe[0].value.to_dict("records") if r["Provider"] == "Ollama"]
    assert row["Status"] == "unavailable" and row["Key used"].endswith("no server configured")
    assert "Admin → Endpoints" in row["How to fix"]
    monkeypatch.setenv("OLLAMA_API_BASE", "http://127.0.0.1:11434")
    at = signed_in("mia", page="app_pages/providers.py")
    [row] = [r for r in at.dataframe[0].value.to_dict("records") if r["Provider"] == "Ollama"]
    assert row["Status"] == "available" and row["Key used"] == "no key needed"


# --- part 5: charts and numbers -------------------------------------------------------------


def _charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_no_data_shows_empty_states_not_broken_axes(sessions):
    add_user(sessions, "mia", "member")
    at = signed_in("mia", page="app_pages/analytics.py")
    assert not at.exception
    assert _charts(at) == []
    shown = texts(at)
    assert "No priced requests in this period, so there is no cost to chart yet." in shown
    assert "No requests in this period, so there are no rates to chart." in shown


def test_one_day_of_data_gets_sensible_axes_and_provider_colours(sessions):
    user = add_user(sessions, "mia", "member")
    at_time = utc_now() - timedelta(minutes=30)
    insert(
        sessions,
        request_row(at_time, user_id=user.id, cost_micros=7_300),
        request_row(
            at_time, user_id=user.id, cost_micros=None, served_model="ollama/x", provider="ollama"
        ),
        request_row(
            at_time,
            user_id=user.id,
            cost_micros=41_555_000,
            provider="anthropic",
            served_model=HAIKU,
        ),
    )
    at = signed_in("mia", page="app_pages/analytics.py")
    assert _metric(at, "Total cost") == "$41.56"  # no "+ unp…" cut off in the metric
    assert _metric(at, "Unpriced requests") == "1"
    charts = {c["layout"]["title"]["text"]: c for c in _charts(at)}
    cost, tokens = charts["Cost per day, by provider"], charts["Tokens by provider"]
    rates = charts["Fallback and error rate per day"]
    x, y = cost["layout"]["xaxis"], cost["layout"]["yaxis"]
    assert x["tickformat"] == "%d %b" and y["tickprefix"] == "$" and "μ" not in json.dumps(y)
    assert y["tickformat"] == ",.2f" and y["rangemode"] == "tozero"
    colours = {t["name"]: t["marker"]["color"] for t in cost["data"]}
    pie = dict(zip(tokens["data"][0]["labels"], tokens["data"][0]["marker"]["colors"], strict=True))
    assert colours["anthropic"] == pie["anthropic"] and colours["openai"] == pie["openai"]
    assert rates["layout"]["yaxis"]["range"][0] == 0  # never -1% to 1%


def test_tables_use_names_people_read(sessions):
    add_user(sessions, "boss", "admin")
    insert(sessions, request_row(utc_now() - timedelta(minutes=5), cost_micros=1_234_567_000))
    at = signed_in("boss", page="app_pages/analytics.py")
    configs = [json.loads(d.proto.columns) for d in at.dataframe]
    labels = {v.get("label") for cfg in configs for v in cfg.values() if isinstance(v, dict)}
    assert "Unpriced requests" in labels and "unpriced_requests" not in labels
    money = [
        v
        for cfg in configs
        for v in cfg.values()
        if isinstance(v, dict) and v.get("label") == "Cost"
    ]
    assert money and money[0]["type_config"]["format"] == "$%,.2f"
    assert _metric(at, "Total cost") == "$1,234.57"


# --- Home ---------------------------------------------------------------------------------


def test_home_shows_a_members_month_recent_work_and_providers(sessions, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai-key-0001")
    user = add_user(sessions, "mia", "member", team="Ops")
    with sessions.begin() as s:
        budgets.set_budget(s, "user", str(user.id), 20_000_000, True, "root", utc_now())
        conversations.create(
            s,
            user_id=user.id,
            title="Trip plan",
            model=MINI,
            task="chat",
            settings={},
            now=utc_now(),
        )
    mia = _caller(sessions, "mia")
    with sessions.begin() as s:
        comparisons.create_session(
            s, mia, RoundSettings(models=(MINI, HAIKU)), title="Haiku vs mini", now=utc_now()
        )
    _spend(sessions, mia, 19_800_000, "a")
    at = signed_in("mia")
    assert not at.exception
    assert _metric(at, "Spent this month") == "$19.80"
    assert _metric(at, "Budget left") == "$0.20"
    shown = texts(at)
    [bar] = at.get("progress")
    assert bar.proto.text.startswith("99% of your $20.00 budget used (hard")
    assert "Trip plan" in shown
    links = [p.proto.label for p in at.get("page_link")]
    assert any(label.startswith("Haiku vs mini") for label in links)
    health = next(d.value for d in at.dataframe if "Health" in d.value.columns)
    assert "OpenAI" in set(health["Provider"]) and "Ollama" not in set(health["Provider"])
    assert "Spend and alerts" not in shown  # a member sees only their own


def test_home_shows_a_manager_their_teams_spend_and_alerts(sessions):
    boss = add_user(sessions, "bea", "manager", team="Ops")
    worker = add_user(sessions, "wes", "member", team="Ops")
    add_user(sessions, "out", "member", team="Lab")
    with sessions() as s:
        teams = dict(s.execute(select(Team.name, Team.id)).all())
    now = utc_now() - timedelta(minutes=10)
    insert(
        sessions,
        request_row(
            now, user_id=worker.id, username="wes", team_id=teams["Ops"], cost_micros=2_000_000
        ),
        request_row(
            now, user_id=boss.id, username="bea", team_id=teams["Ops"], cost_micros=500_000
        ),
        request_row(now, user_id=3, username="out", team_id=teams["Lab"], cost_micros=9_000_000),
    )
    with sessions.begin() as s:
        budgets.set_budget(s, "team", str(teams["Ops"]), 2_000_000, False, "root", utc_now())
    _spend(sessions, _caller(sessions, "wes"), 1_900_000, "t")
    at = signed_in("bea")
    assert not at.exception
    shown = texts(at)
    assert "Spend and alerts: team Ops" in shown
    spent = [m.value for m in at.metric if m.label == "Spent this month"]
    assert "$2.50" in spent  # the team's ledger, not Lab's $9.00
    people = next(d.value for d in at.dataframe if "Person" in d.value.columns)
    assert list(people["Person"]) == ["wes", "bea"] and "out" not in set(people["Person"])
    assert any("team Ops is at 95%" in w.value for w in at.warning)
