"""The Analytics page per role (AppTest): scope enforced, including URL tampering."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.clock import utc_now
from core.store.tables import Team
from tests.conftest import add_user
from tests.support.ledger_rows import insert, request_row
from tests.support.pages import signed_in, texts

pytestmark = pytest.mark.timeout(180)
PAGE = "app_pages/analytics.py"


@pytest.fixture
def people(sessions):
    users = {
        "alice": add_user(sessions, "alice", "member", "Ops"),
        "bob": add_user(sessions, "bob", "manager", "Ops"),
        "carol": add_user(sessions, "carol", "member", "Lab"),
        "boss": add_user(sessions, "boss", "admin"),
    }
    with sessions() as s:
        teams = dict(s.execute(select(Team.name, Team.id)).all())
    now = utc_now()
    rows = []
    # alice spends $0.000111 a request, bob $0.000222, carol $0.000333: sums show who is counted.
    for name, team, cost, n in (
        ("alice", "Ops", 111, 3),
        ("bob", "Ops", 222, 2),
        ("carol", "Lab", 333, 4),
    ):
        for i in range(n):
            rows.append(
                request_row(
                    now - timedelta(hours=i + 1),
                    user_id=users[name].id,
                    username=name,
                    team_id=teams[team],
                    cost_micros=cost,
                    task=f"task-of-{name}",
                )
            )
    insert(sessions, *rows)
    return users


def metric(at, label: str) -> str:
    return next(str(m.value) for m in at.metric if m.label == label)


def dataframes_text(at) -> str:
    return "\n".join(el.value.to_csv() for el in at.dataframe)


def open_view(at, name: str):
    at.radio(key="sb_analytics_f_view").set_value(name).run()
    assert not at.exception
    return at


def every_view_text(at) -> str:
    """What the Models and Requests views show (task names appear in both)."""
    return dataframes_text(open_view(at, "Models")) + dataframes_text(open_view(at, "Requests"))


def test_member_sees_only_their_own_usage(people):
    at = signed_in("alice", PAGE)
    assert not at.exception
    assert metric(at, "Requests") == "3"
    assert metric(at, "Total cost") == "$0.00033"
    assert "Showing usage for you" in texts(at)
    assert "Cost by user" not in texts(at)
    seen = every_view_text(at)
    assert "task-of-alice" in seen and "task-of-carol" not in seen and "task-of-bob" not in seen
    assert [s.label for s in at.selectbox][:2] == ["Date range", "Provider"]


def test_member_putting_another_user_in_the_url_still_sees_only_their_own(people):
    at = signed_in("alice")
    at.query_params["user"] = str(people["carol"].id)
    at.query_params["team"] = "2"
    at.switch_page(PAGE).run()
    assert not at.exception
    assert metric(at, "Requests") == "3"
    assert metric(at, "Total cost") == "$0.00033"
    assert "the user filter was removed" in texts(at)
    assert "user" not in at.query_params  # the URL now shows what is really applied
    seen = every_view_text(at)
    assert "task-of-alice" in seen and "task-of-carol" not in seen


def test_manager_sees_the_team_and_can_filter_to_a_member(people):
    at = signed_in("bob", PAGE)
    assert not at.exception
    assert metric(at, "Requests") == "5"
    assert metric(at, "Total cost") == "$0.00078"
    assert "Cost by user" in texts(at)
    assert "carol" not in dataframes_text(at)
    seen = every_view_text(at)
    assert "task-of-bob" in seen and "task-of-carol" not in seen
    open_view(at, "Overview")
    at.selectbox(key="sb_analytics_f_user_id").set_value(people["alice"].id).run()
    assert metric(at, "Requests") == "3"
    assert at.query_params["user"] == str(people["alice"].id)
    # A user outside the team in the URL is dropped, not shown.
    at = signed_in("bob")
    at.query_params["user"] = str(people["carol"].id)
    at.switch_page(PAGE).run()
    assert metric(at, "Requests") == "5"
    assert "people in your team" in texts(at)


def test_admin_sees_everything_and_filters_by_task(people):
    at = signed_in("boss", PAGE)
    assert not at.exception
    assert metric(at, "Requests") == "9"
    assert metric(at, "Total cost") == "$0.0021"
    assert "carol" in dataframes_text(at)
    at.selectbox(key="sb_analytics_f_task").set_value("task-of-bob").run()
    assert metric(at, "Requests") == "2"
    assert at.query_params["task"] == "task-of-bob"
    assert len(at.get("plotly_chart")) >= 5


def test_bad_url_values_get_a_note_and_defaults(people):
    at = signed_in("boss")
    at.query_params["range"] = "forever"
    at.query_params["user"] = "abc"
    at.switch_page(PAGE).run()
    assert not at.exception
    assert "Unknown date range 'forever'" in texts(at)
    assert "Ignored user='abc'" in texts(at)
    assert metric(at, "Requests") == "9"


def test_what_if_form_reprices(people):
    at = open_view(signed_in("boss", PAGE), "What-if")
    assert at.query_params["view"] == "What-if"
    form_select = next(s for s in at.selectbox if s.label == "Reprice at")
    form_select.set_value("openai/gpt-4o-mini")
    at.button(key="FormSubmitter:whatif-Reprice").click().run()
    assert not at.exception
    # 9 requests x (100 in, 50 out) at $0.15/$0.60 per 1M = 9 x 45 micro-dollars.
    assert any(m.label == "At openai/gpt-4o-mini" and m.value == "$0.00041" for m in at.metric)


def test_every_view_works_on_demo_data(sessions):
    from tests.support.cli import run_cli

    assert run_cli("demo-data", "--rows", "1500", "--days", "10")[0] == 0
    add_user(sessions, "boss", "admin")
    at = signed_in("boss", PAGE)
    assert not at.exception and metric(at, "Requests") != "0"
    at.radio(key="sb_analytics_f_view").set_value("Budgets & alerts").run()
    assert not at.exception and "Budgets" in texts(at) and "Alerts" in texts(at)
    assert "Show the requests" in texts(at)  # each alert links to its filtered view
    open_view(at, "Requests")
    first = list(at.dataframe[0].value["id"])
    older = next(b for b in at.button if b.label == "Older")
    older.click().run()
    second = list(at.dataframe[0].value["id"])
    assert len(first) == len(second) == 50 and not set(first) & set(second)
    pick = next(s for s in at.selectbox if s.label == "Show the attempts of")
    pick.set_value(second[0]).run()
    assert not at.exception and len(at.dataframe) == 2
    open_view(at, "Export")
    next(b for b in at.button if b.label == "Prepare the requests CSV").click().run()
    assert not at.exception
    assert any(
        d.label.startswith("Download ") and "requests" in d.label for d in at.get("download_button")
    )


def test_model_table_shows_the_teams_comparison_rating(people, sessions):
    from tests.support import compare as cmp

    ops = cmp.caller(sessions, people["bob"].id)
    sid = cmp.new_session(sessions, ops, ["openai/gpt-4o", "openai/gpt-4o-mini"])
    for _ in range(3):
        rid = cmp.add_round(
            sessions, ops, sid, [cmp.answer("openai/gpt-4o"), cmp.answer("openai/gpt-4o-mini")]
        )
        cmp.vote(sessions, ops, rid, "best", "openai/gpt-4o")
    at = open_view(signed_in("bob", PAGE), "Models")
    table = next(el.value for el in at.dataframe if "rating" in el.value.columns)
    [rating] = table.loc[table["model"] == "openai/gpt-4o", "rating"].unique()
    assert rating > 0.5  # it won every vote in bob's team
