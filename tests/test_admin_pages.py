"""AppTest: the Admin and Users pages: keys, endpoints, budgets, prices, audit, users."""

from __future__ import annotations

from sqlalchemy import select

from core.accounts import auth
from core.request import Caller
from core.settings import routes
from core.store.tables import ORG_OWNER_ID, ApiKey, Budget, Endpoint, PriceOverride, RouteRow, Team
from tests.conftest import add_user
from tests.gateway_support import HAIKU, MINI
from tests.support.pages import notices, signed_in, texts


def _admin(sessions, page: str = "app_pages/admin.py"):
    add_user(sessions, "root", "admin", team="Red")
    return signed_in("root", page=page)


def test_budget_form_refuses_bad_values_and_saves_good_ones(sessions):
    at = _admin(sessions)
    at.text_input(key="budget_limit").set_value("-5")
    at.button(key="FormSubmitter:budget-Save budget").click().run()
    assert any("cannot be negative" in e.value for e in at.error)
    at.text_input(key="budget_limit").set_value("lots")
    at.button(key="FormSubmitter:budget-Save budget").click().run()
    assert any("is not an amount" in e.value for e in at.error)
    with sessions() as s:
        assert s.scalar(select(Budget)) is None
    at.text_input(key="budget_limit").set_value("12.50")
    at.toggle(key="budget_hard").set_value(False)
    at.button(key="FormSubmitter:budget-Save budget").click().run()
    assert any("$12.50 a month (soft)" in s for s in notices(at))
    table = next(d.value for d in at.dataframe if "Held (in progress)" in d.value.columns)
    assert list(table["Limit"]) == ["$12.50"] and list(table["Spent"]) == ["$0.00"]


def test_endpoint_form_refuses_malformed_url_and_duplicate_name(sessions, app_fakes):
    at = _admin(sessions)
    at.text_input(key="ep_name").set_value("corp-llm")
    at.text_input(key="ep_base").set_value("not a url")
    at.button(key="FormSubmitter:endpoint-Save endpoint").click().run()
    assert any("is not a valid http(s) URL" in e.value for e in at.error)
    at.text_input(key="ep_name").set_value("corp-llm")
    at.text_input(key="ep_base").set_value(app_fakes.openai.base_url)
    at.text_input(key="ep_models").set_value("gpt-4o-mini, gpt-4o")
    at.button(key="FormSubmitter:endpoint-Save endpoint").click().run()
    assert any("Saved endpoint 'corp-llm'" in s for s in notices(at))
    at.selectbox(key="endpoint_pick").set_value("New endpoint").run()
    at.text_input(key="ep_name").set_value("corp-llm")
    at.text_input(key="ep_base").set_value("https://elsewhere.example.com/v1")
    at.button(key="FormSubmitter:endpoint-Save endpoint").click().run()
    assert any("already exists" in e.value for e in at.error)
    with sessions() as s:
        assert (
            s.scalar(select(Endpoint.api_base).where(Endpoint.name == "corp-llm"))
            == app_fakes.openai.base_url
        )
    # The endpoint's Test button makes one call to its first model.
    at.selectbox(key="endpoint_pick").set_value("corp-llm").run()
    at.button(key="test_endpoint").click().run()
    assert any("The key works: corp-llm/gpt-4o-mini" in s.value for s in at.success)


def test_org_key_saved_tested_and_deleted(sessions, app_fakes):
    at = _admin(sessions)
    at.selectbox(key="shared_provider").set_value("anthropic")
    at.text_input(key="shared_secret").set_value("sk-ant-org-key-000055")
    at.button(key="FormSubmitter:add_shared_key-Save key").click().run()
    assert any("Saved Organisation's anthropic key" in s for s in notices(at))
    at.button(key="test_shared").click().run()
    assert any("The key works" in s.value for s in at.success)
    assert app_fakes.anthropic.requests()[-1].key_last4 == "0055"
    at.button(key="del_shared_key").click().run()
    at.button(key="yes_shared_key").click().run()
    with sessions() as s:
        assert s.scalar(select(ApiKey)) is None
    assert "sk-ant-org-key-000055" not in texts(at)


def test_price_override_shows_the_catalog_price_and_validates(sessions):
    at = _admin(sessions)
    at.text_input(key="price_model").set_value("openai/gpt-4o")
    at.text_input(key="price_in").set_value("2")
    at.text_input(key="price_out").set_value("abc")
    at.button(key="FormSubmitter:price-Save price").click().run()
    assert any("is not an amount" in e.value for e in at.error)
    at.text_input(key="price_model").set_value("nobody/nothing")
    at.text_input(key="price_out").set_value("8")
    at.button(key="FormSubmitter:price-Save price").click().run()
    assert any("Unknown model" in e.value for e in at.error)
    with sessions() as s:
        assert s.scalar(select(PriceOverride)) is None
    at.text_input(key="price_model").set_value("openai/gpt-4o")
    at.button(key="FormSubmitter:price-Save price").click().run()
    table = next(d.value for d in at.dataframe if "Catalog input $/1M" in d.value.columns)
    row = table.iloc[0]
    assert (row["Input $/1M"], row["Output $/1M"]) == ("2", "8")
    assert row["Catalog input $/1M"] == "2.5"


def test_audit_log_filters(sessions):
    at = _admin(sessions)
    at.text_input(key="budget_limit").set_value("5")
    at.button(key="FormSubmitter:budget-Save budget").click().run()
    at.text_input(key="audit_action").set_value("budget.set").run()
    table = next(d.value for d in at.dataframe if "Action" in d.value.columns)
    assert set(table["Action"]) == {"budget.set"} and set(table["Who"]) == {"root"}
    at.text_input(key="audit_action").set_value("no.such.action").run()
    assert any("No audit entries match" in i.value for i in at.info)


def test_users_page_guards_the_last_admin_and_edits_users(sessions):
    at = _admin(sessions, "app_pages/users.py")
    add_user(sessions, "bob", "member")
    at.run()
    at.selectbox(key="edit_user").set_value("root").run()
    at.selectbox(key="edit_role").set_value("member").run()
    at.button(key="save_role").click().run()
    assert any("last active admin" in e.value for e in at.error)
    at.button(key="del_deactivate").click().run()
    at.button(key="yes_deactivate").click().run()
    assert any("last active admin" in e.value for e in at.error)
    with sessions() as s:
        root = auth.get_user(s, "root")
        assert root.role == "admin" and root.active

    at.selectbox(key="edit_user").set_value("bob").run()
    at.text_input(key="edit_team").set_value("Blue")
    at.button(key="save_team").click().run()
    at.selectbox(key="edit_role").set_value("manager").run()
    at.button(key="save_role").click().run()
    at.button(key="del_deactivate").click().run()
    at.button(key="yes_deactivate").click().run()
    at.text_input(key="reset_pw").set_value("short")
    at.button(key="FormSubmitter:reset_password-Reset password").click().run()
    assert any("too short" in e.value for e in at.error)
    with sessions() as s:
        bob = auth.get_user(s, "bob")
        assert (bob.team, bob.role, bob.active) == ("Blue", "manager", False)


def test_routes_tab_sets_org_and_team_routes_with_their_options(sessions):
    at = _admin(sessions)
    member = add_user(sessions, "mia", "member", team="Red")
    assert any("No organisation or team routes yet" in i.value for i in at.info)

    # The organisation default, with a bad timeout first: refused, nothing saved.
    at.selectbox(key="sr_owner").set_value("Organisation").run()
    form = f"org_{ORG_OWNER_ID}_"
    at.selectbox(key=f"sr_model_{form}").set_value(MINI).run()
    at.multiselect(key=f"sr_fallbacks_{form}").set_value(["openai/gpt-4o"]).run()
    at.number_input(key=f"sr_{form}_t_total").set_value(0.0).run()
    at.button(key="sr_save").click().run()
    assert any("The total timeout 0 s is out of range" in e.value for e in at.error)
    with sessions() as s:
        assert s.scalar(select(RouteRow)) is None
    at.number_input(key=f"sr_{form}_t_total").set_value(60.0).run()
    at.number_input(key=f"sr_{form}_max_retries").set_value(1).run()
    at.button(key="sr_save").click().run()
    assert any("Saved the default route for Organisation" in s for s in notices(at))

    # Team Red's code route, failing over on content refusals.
    with sessions() as s:
        red = s.scalar(select(Team.id).where(Team.name == "Red"))
    at.selectbox(key="sr_owner").set_value("Team Red").run()
    at.selectbox(key="sr_task").set_value("code").run()
    form = f"team_{red}_code"
    at.selectbox(key=f"sr_model_{form}").set_value("openai/gpt-4o").run()
    at.toggle(key=f"sr_{form}_content_failover").set_value(True).run()
    at.button(key="sr_save").click().run()
    table = next(d.value for d in at.dataframe if "Chain" in d.value.columns)
    assert list(table["For"]) == ["Organisation", "Team Red"]
    assert list(table["Options"]) == [
        "1 retry per model, total timeout 60 s",
        "fails over on content refusals",
    ]

    # The gateway's resolution uses them: the team's code route, the org's default.
    caller = Caller(member.id, "mia", "member", red)
    with sessions() as s:
        code = routes.resolve(s, caller, model="auto", fallbacks=None, task="code")
        chat = routes.resolve(s, caller, model="auto", fallbacks=None, task="chat")
    assert (code.chain, code.source, code.options.content_refusal_failover) == (
        ("openai/gpt-4o",),
        "task:team",
        True,
    )
    assert (chat.chain, chat.source, chat.options.total_timeout_s, chat.options.max_retries) == (
        (MINI, "openai/gpt-4o"),
        "org",
        60.0,
        1,
    )

    # Removing asks first.
    at.button(key="del_shared_route").click().run()
    assert any("Remove the code route for Team Red?" in w.value for w in at.warning)
    at.button(key="yes_shared_route").click().run()
    with sessions() as s:
        assert [r.scope for r in s.scalars(select(RouteRow))] == ["org"]


def test_routes_tab_sets_cost_optimised_weights_and_provider_order(sessions):
    at = _admin(sessions)
    at.selectbox(key="sr_owner").set_value("Organisation").run()
    form = f"org_{ORG_OWNER_ID}_"
    at.selectbox(key=f"sr_model_{form}").set_value(MINI).run()
    at.multiselect(key=f"sr_fallbacks_{form}").set_value([HAIKU]).run()
    at.toggle(key=f"sr_cost_{form}").set_value(True).run()

    # Every weight at zero is refused, and nothing is saved.
    for name in ("w_price", "w_latency", "w_quality", "w_pref"):
        at.number_input(key=f"sr_{form}_{name}").set_value(0.0)
    at.run()
    at.button(key="sr_save").click().run()
    assert any("Weights must be from 0 to 1 each" in e.value for e in at.error)
    with sessions() as s:
        assert s.scalar(select(RouteRow)) is None

    at.number_input(key=f"sr_{form}_w_price").set_value(0.7)
    at.number_input(key=f"sr_{form}_w_latency").set_value(0.3)
    at.multiselect(key=f"sr_{form}_provider_order").set_value(["anthropic", "openai"])
    at.run()
    at.button(key="sr_save").click().run()
    assert any("Saved the default route for Organisation" in s for s in notices(at))
    table = next(d.value for d in at.dataframe if "Chain" in d.value.columns)
    assert list(table["Options"]) == [
        "cost-optimised order, weights price 0.7, latency 0.3, quality 0, preference 0, "
        "prefers anthropic > openai"
    ]

    # What the gateway resolves for a member: the same weights and order.
    member = add_user(sessions, "mia", "member", team="Red")
    with sessions() as s:
        red = s.scalar(select(Team.id).where(Team.name == "Red"))
        route = routes.resolve(
            s, Caller(member.id, "mia", "member", red), model="auto", fallbacks=None, task="chat"
        )
    w = route.options.weights
    assert (route.options.cost_optimised, route.options.provider_order) == (
        True,
        ("anthropic", "openai"),
    )
    assert (w.price, w.latency, w.quality, w.preference) == (0.7, 0.3, 0.0, 0.0)
