"""AppTest: Providers & keys, Model preferences (chain, profiles) and My account, per role."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.accounts import auth, keys
from core.clock import utc_now
from core.settings import profiles, routes
from core.settings.routes import RouteOptions
from core.store.tables import ApiKey, GatewayToken, PreferenceRefusal, ProfileRoute, RouteRow
from tests.conftest import PASSWORD, add_user
from tests.gateway_support import HAIKU, MINI
from tests.support.pages import APP, signed_in, texts
from ui import state

RAW_KEY = "sk-proj-RAWsecretVALUE-0123456789abcdefZZ"


def _everything_shown(at) -> str:
    """Text, tables, code blocks and every widget's value: all a person could see."""
    parts = [texts(at)]
    parts += [d.value.to_csv() for d in at.dataframe]
    parts += [str(c.value) for c in at.code]
    parts += [str(w.value) for w in (*at.text_input, *at.selectbox, *at.multiselect)]
    return "\n".join(parts)


def _eventually(sessions, query, timeout_s: float = 10.0):
    """The ledger and key marks are written by the gateway's background writer: wait for it."""
    deadline = time.monotonic() + timeout_s
    while True:
        with sessions() as s:
            value = s.scalar(query)
        if value is not None or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def _add_key(at, provider: str, secret: str, anyway: bool = False):
    at.selectbox(key="key_provider").set_value(provider)
    at.text_input(key="key_secret").set_value(secret)
    if anyway:
        at.checkbox(key="key_anyway").check()
    return at.button(key="FormSubmitter:add_key-Save key").click().run()


def test_member_adds_tests_and_deletes_a_key(sessions, app_fakes):
    member = add_user(sessions, "mia", "member")
    at = signed_in("mia", page="app_pages/providers.py")
    assert not at.exception
    _add_key(at, "openai", "sk-mia-good-key-00004444")
    assert any("Saved your openai key sk-…4444" in s.value for s in at.success)
    assert "**openai** · `sk-…4444`" in texts(at)

    at.button(key="test_openai").click().run()
    assert any("The key works" in s.value for s in at.success)
    assert app_fakes.openai.requests()[-1].key_last4 == "4444"

    app_fakes.openai.accepted_keys = frozenset({"sk-some-other-key"})
    at.button(key="test_openai").click().run()
    assert any(e.value.startswith("Test failed") and "Invalid key" in e.value for e in at.error)
    assert _eventually(sessions, select(ApiKey.last_auth_failure_at))  # written in background
    at.run()
    assert "last refused by the provider" in texts(at)

    at.button(key="del_key_openai").click().run()
    assert any("Delete your openai key" in w.value for w in at.warning)
    at.button(key="no_key_openai").click().run()  # cancel keeps it
    with sessions() as s:
        assert len(keys.list_keys(s, "user", member.id)) == 1
    at.button(key="del_key_openai").click().run()
    at.button(key="yes_key_openai").click().run()
    assert any("Deleted your openai key" in s.value for s in at.success)
    with sessions() as s:
        assert keys.list_keys(s, "user", member.id) == []


def test_suspicious_key_gets_a_warning_before_saving(sessions, app_fakes):
    member = add_user(sessions, "mia", "member")
    at = signed_in("mia", page="app_pages/providers.py")
    _add_key(at, "anthropic", "sk-proj-looks-like-openai-1234")
    assert any("looks like a key for openai" in w.value for w in at.warning)
    with sessions() as s:
        assert keys.list_keys(s, "user", member.id) == []
    _add_key(at, "anthropic", "sk-proj-looks-like-openai-1234", anyway=True)
    with sessions() as s:
        assert [k.provider for k in keys.list_keys(s, "user", member.id)] == ["anthropic"]
    _add_key(at, "openai", "sk-has a space")
    assert any("spaces or line breaks" in e.value for e in at.error)


def test_unavailable_providers_say_how_to_fix(sessions, monkeypatch):
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    add_user(sessions, "mia", "member")
    at = signed_in("mia", page="app_pages/providers.py")
    status = at.dataframe[0].value
    row = status[status["Provider"] == "OpenAI"].iloc[0]
    assert row["Status"] == "unavailable" and "Add your own key" in row["How to fix"]
    assert "OPENAI_API_KEY" in row["How to fix"]
    assert any("Unavailable for you" in w.value and "OpenAI" in w.value for w in at.warning)


def test_raw_key_appears_nowhere_after_saving_through_the_page(
    sessions, app_fakes, isolated_env: Path, caplog, capfd
):
    caplog.set_level(logging.DEBUG)
    add_user(sessions, "mia", "member")
    at = signed_in("mia", page="app_pages/providers.py")
    _add_key(at, "openai", RAW_KEY)
    at.button(key="test_openai").click().run()  # the key travels through the gateway too
    assert any("The key works" in s.value for s in at.success)
    at.switch_page("app_pages/preferences.py").run()
    at.switch_page("app_pages/providers.py").run()
    shown = _everything_shown(at)
    assert "sk-…ZZ" in shown or "…efZZ" in shown  # the mask is there...
    secret_part = RAW_KEY[8:-4]
    assert RAW_KEY not in shown and secret_part not in shown  # ...the key is not

    with sessions() as s:
        ciphertext = s.scalar(select(ApiKey.ciphertext))
    assert ciphertext is not None
    db_bytes = b"".join(p.read_bytes() for p in isolated_env.glob("switchboard.db*"))
    outside = db_bytes.replace(ciphertext, b"")
    assert RAW_KEY.encode() not in outside and secret_part.encode() not in outside

    out, err = capfd.readouterr()
    logged = caplog.text + out + err
    assert RAW_KEY not in logged and secret_part not in logged
    assert app_fakes.openai.requests()[-1].key_last4 == RAW_KEY[-4:]  # it was really used


def test_members_see_only_their_own_keys_even_by_url(sessions, app_fakes):
    other = add_user(sessions, "otto", "member")
    add_user(sessions, "mia", "member")
    with sessions.begin() as s:
        from core.accounts.secrets import load_cipher
        from core.clock import utc_now
        from core.config import load_settings

        keys.set_key(
            s,
            load_cipher(load_settings()),
            owner_kind="user",
            owner_id=other.id,
            provider="anthropic",
            secret="sk-ant-otto-private-7777",
            actor="otto",
            now=utc_now(),
            known_providers={"anthropic"},
        )
    at = signed_in("mia", page="app_pages/providers.py")
    at.query_params["user"] = "otto"
    at.query_params["owner_id"] = str(other.id)
    at.run()
    shown = _everything_shown(at)
    assert "7777" not in shown and "otto" not in shown
    assert "You have no keys of your own yet" in shown


def _preview(at):
    return next(d.value for d in at.dataframe if "What happens" in d.value.columns)


def test_edit_a_chain_and_see_the_preview_change(sessions, app_fakes, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    add_user(sessions, "mia", "member")
    at = signed_in("mia", page="app_pages/preferences.py")
    at.selectbox(key="default_model").set_value("openai/gpt-4o").run()
    at.button(key="save_default").click().run()
    assert any("Default model saved: openai/gpt-4o" in s.value for s in at.success)
    assert list(_preview(at)["Model"]) == ["openai/gpt-4o"]

    at.toggle(key="only_keys").set_value(False).run()
    at.selectbox(key="chain_add").set_value(HAIKU).run()
    at.button(key="chain_add_button").click().run()
    preview = _preview(at)
    assert list(preview["Model"]) == ["openai/gpt-4o", HAIKU]
    assert preview.iloc[1]["What happens"] == "skipped: no key for anthropic"
    at.selectbox(key="chain_add").set_value(MINI).run()
    at.button(key="chain_add_button").click().run()
    at.button(key="up_2").click().run()  # mini before haiku
    assert list(_preview(at)["Model"]) == ["openai/gpt-4o", MINI, HAIKU]
    at.toggle(key="cost_optimised").set_value(True).run()
    tried = _preview(at)[_preview(at)["Order"] != "–"]
    assert list(tried["Model"]) == [MINI, "openai/gpt-4o"]  # cheapest first
    assert any("Score = price" in c.value for c in at.caption)
    at.number_input(key="w_price").set_value(0.8).run()
    assert any("Score = price × 0.80" in c.value for c in at.caption)
    at.button(key="save_chain").click().run()
    with sessions() as s:
        row = s.scalar(select(RouteRow).where(RouteRow.task == ""))
        assert row.models == ["openai/gpt-4o", MINI, HAIKU] and row.options["cost_optimised"]
        assert row.options["weights"]["price"] == 0.8

    at.button(key="remove_0").click().run()
    at.button(key="remove_0").click().run()
    at.button(key="remove_0").click().run()
    at.button(key="save_chain").click().run()
    assert any("at least one model" in e.value for e in at.error)
    with sessions() as s:  # the empty chain changed nothing
        assert s.scalar(select(RouteRow.models).where(RouteRow.task == "")) == [
            "openai/gpt-4o",
            MINI,
            HAIKU,
        ]


def test_chain_editor_sets_timeouts_retries_and_failover_and_keeps_other_options(
    sessions, app_fakes
):
    user = add_user(sessions, "mia", "member")
    with sessions.begin() as s:  # options saved elsewhere (CLI, provider order section)
        routes.set_route(
            s,
            scope="user",
            scope_id=user.id,
            models=["openai/gpt-4o"],
            known_model=lambda m: True,
            actor="mia",
            now=utc_now(),
            options=RouteOptions(provider_order=("openai",), max_tokens=900, idle_timeout_s=7.0),
        )
    at = signed_in("mia", page="app_pages/preferences.py")
    assert at.number_input(key="t_idle").value == 7.0
    at.number_input(key="t_total").set_value(0.0).run()
    at.button(key="save_chain").click().run()
    assert any("The total timeout 0 s is out of range" in e.value for e in at.error)
    with sessions() as s:  # refused: nothing changed
        assert s.scalar(select(RouteRow.options))["total_timeout_s"] == 300.0

    at.number_input(key="t_total").set_value(60.0).run()
    at.number_input(key="max_retries").set_value(0).run()
    at.toggle(key="content_failover").set_value(True).run()
    at.button(key="save_chain").click().run()
    assert not at.error
    with sessions() as s:
        saved = RouteOptions.from_json(s.scalar(select(RouteRow.options)))
    assert (saved.total_timeout_s, saved.max_retries, saved.content_refusal_failover) == (
        60.0,
        0,
        True,
    )
    assert (saved.provider_order, saved.max_tokens, saved.idle_timeout_s) == (("openai",), 900, 7.0)


def test_task_route_validates_temperature_and_shows_a_recommendation(sessions, app_fakes):
    add_user(sessions, "mia", "member")
    at = signed_in("mia", page="app_pages/preferences.py")
    tasks = next(d.value for d in at.dataframe if "Recommended" in d.value.columns)
    code = tasks[tasks["Task"] == "code"].iloc[0]
    assert code["Recommended"].split("/")[0] in ("openai", "anthropic")
    assert code["Why"].startswith("Good for code with tool use")
    at.selectbox(key="task_pick").set_value("code").run()
    at.text_input(key="task_t_code").set_value("3").run()
    at.button(key="save_task").click().run()
    assert any("Temperature 3.0 is out of range" in e.value for e in at.error)
    at.text_input(key="task_t_code").set_value("0.2").run()
    at.number_input(key="task_max_code").set_value(2048).run()
    at.number_input(key="task_code_t_first").set_value(4.0).run()
    at.number_input(key="task_code_max_retries").set_value(0).run()
    at.button(key="save_task").click().run()
    with sessions() as s:
        row = s.scalar(select(RouteRow).where(RouteRow.task == "code"))
        saved = RouteOptions.from_json(row.options)
    assert (saved.temperature, saved.max_tokens) == (0.2, 2048)
    assert (saved.first_token_timeout_s, saved.max_retries) == (4.0, 0)
    # The task route's own limits: the default chain's are untouched.
    assert at.number_input(key="t_first").value == RouteOptions().first_token_timeout_s


def test_preferring_a_provider_without_a_key_is_refused_on_the_page(sessions, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-openai-key-1111")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    add_user(sessions, "mia", "member")
    at = signed_in("mia", page="app_pages/preferences.py")
    at.selectbox(key="default_model").set_value("openai/gpt-4o").run()
    at.button(key="save_default").click().run()
    at.multiselect(key="provider_order").select("anthropic").run()
    at.button(key="save_order").click().run()
    assert any("No usable key for anthropic" in e.value for e in at.error)
    with sessions() as s:
        assert [r.provider for r in s.scalars(select(PreferenceRefusal))] == ["anthropic"]


def _switch_profile(username: str, profile: str):
    """The sidebar switch set to ``profile``, as the app shell sees it on a full run.

    (AppTest reruns only the page script after the first run, so the switch's value is
    given before that run; the browser test clicks the real switch.)
    """
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    at.session_state[state.PROFILE_SWITCH] = profile
    at.run()
    switch = at.sidebar.selectbox(key=state.PROFILE_SWITCH)
    assert switch.value == profile and "Work" in switch.options
    return at


def test_switching_profiles_changes_what_the_page_edits(sessions, app_fakes):
    user = add_user(sessions, "mia", "member")
    home = signed_in("mia")
    assert not any(w.key == state.PROFILE_SWITCH for w in home.sidebar.selectbox)  # none yet
    at = home.switch_page("app_pages/preferences.py").run()
    at.text_input(key="profile_name").set_value("Work")
    at.selectbox(key="profile_keys").set_value("shared")
    at.button(key="FormSubmitter:new_profile-Create profile").click().run()
    assert any("Created profile 'Work'" in s.value for s in at.success)

    at = _switch_profile("mia", "Work")
    assert at.session_state[state.ACTIVE_PROFILE] == "Work"
    at.switch_page("app_pages/preferences.py").run()
    assert "Editing profile **Work**" in texts(at)
    at.selectbox(key="default_model").set_value(MINI).run()
    at.button(key="save_default").click().run()
    with sessions() as s:
        work = profiles.find_profile(s, user.id, "Work")
        assert s.scalar(select(ProfileRoute.models).where(ProfileRoute.profile_id == work.id)) == [
            MINI
        ]
        assert s.scalar(select(RouteRow)) is None  # the user's own settings are untouched

    at.switch_page("app_pages/providers.py").run()  # the switch holds on every page
    assert at.session_state[state.ACTIVE_PROFILE] == "Work"
    assert "only team or organisation keys" in texts(at)

    at = _switch_profile("mia", "")
    assert at.session_state[state.ACTIVE_PROFILE] is None
    at.switch_page("app_pages/preferences.py").run()
    assert "Editing your own settings" in texts(at)


def test_account_tokens_are_shown_once_and_revoked_with_confirmation(sessions):
    add_user(sessions, "mia", "member")
    at = signed_in("mia", page="app_pages/account.py")
    at.text_input(key="token_name").set_value("laptop")
    at.button(key="FormSubmitter:new_token-Create token").click().run()
    [code] = at.code
    token = code.value
    assert token.startswith("sb-") and "Copy it now" in texts(at)
    at.run()  # shown once: gone on the next run
    assert not at.code and token not in _everything_shown(at)
    at.button(key="del_token").click().run()
    at.button(key="yes_token").click().run()
    with sessions() as s:
        assert s.scalar(select(GatewayToken.revoked_at)) is not None


def test_account_password_change_validates(sessions):
    add_user(sessions, "mia", "member")
    at = signed_in("mia", page="app_pages/account.py")
    at.text_input(key="pw_current").set_value(PASSWORD)
    at.text_input(key="pw_new").set_value("another-good-secret")
    at.text_input(key="pw_repeat").set_value("another-good-secreT")
    at.button(key="FormSubmitter:password-Change password").click().run()
    assert any("differ" in e.value for e in at.error)
    at.text_input(key="pw_current").set_value("wrong-password-here")
    at.text_input(key="pw_new").set_value("another-good-secret")
    at.text_input(key="pw_repeat").set_value("another-good-secret")
    at.button(key="FormSubmitter:password-Change password").click().run()
    assert any("current password is wrong" in e.value for e in at.error)
    at.text_input(key="pw_current").set_value(PASSWORD)
    at.text_input(key="pw_new").set_value("another-good-secret")
    at.text_input(key="pw_repeat").set_value("another-good-secret")
    at.button(key="FormSubmitter:password-Change password").click().run()
    assert any("Password changed" in s.value for s in at.success)
    from core.clock import utc_now

    assert auth.verify_login(sessions, "mia", "another-good-secret", utc_now())


def test_manager_sees_team_budgets_but_no_keys(sessions, app_fakes):
    from core.clock import utc_now
    from core.money import budgets

    lead = add_user(sessions, "lead", "manager", team="Red")
    add_user(sessions, "mate", "member", team="Red")
    with sessions.begin() as s:
        team_id = auth.caller_for(s, lead.id).team_id
        budgets.set_budget(s, "team", str(team_id), 25_000_000, True, "root", utc_now())
    at = signed_in("lead", page="app_pages/account.py")
    table = next(d.value for d in at.dataframe if "Budget" in d.value.columns)
    assert list(table["Budget"]) == ["team Red"] and list(table["Limit"]) == ["$25.00"]
    member = signed_in("mate", page="app_pages/account.py")
    assert not any("Budget" in d.value.columns for d in member.dataframe)
