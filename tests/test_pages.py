"""AppTest: every page renders for every role; members cannot reach admin pages."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.accounts import signin_guard
from core.store.tables import AuditEntry, User
from tests.conftest import PASSWORD, add_user
from tests.support.pages import signed_in

APP = "../app.py"
EVERYONE = [
    "app_pages/home.py",
    "app_pages/chat.py",
    "app_pages/compare.py",
    "app_pages/leaderboard.py",
    "app_pages/analytics.py",
    "app_pages/models.py",
    "app_pages/providers.py",
    "app_pages/preferences.py",
    "app_pages/account.py",
]
ADMIN_ONLY = ["app_pages/admin.py", "app_pages/users.py"]
ROLE_PAGES = {"member": EVERYONE, "manager": EVERYONE, "admin": EVERYONE + ADMIN_ONLY}


def test_first_run_creates_admin_through_the_form(engine, sessions):
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert any("first admin" in m.value for m in at.markdown)
    at.text_input[0].set_value("root")
    at.text_input[1].set_value("Root Admin")
    at.text_input[3].set_value(PASSWORD)
    at.text_input[4].set_value(PASSWORD)
    at.button[0].click().run()
    assert not at.exception
    with sessions() as s:
        user = s.scalar(select(User).where(User.username == "root"))
        assert user is not None and user.role == "admin"
        assert PASSWORD not in user.password_hash


def test_first_run_form_rejects_mismatch_and_weak_password(engine, sessions):
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.text_input[0].set_value("root")
    at.text_input[3].set_value(PASSWORD)
    at.text_input[4].set_value(PASSWORD + "x")
    at.button[0].click().run()
    assert "differ" in at.error[0].value
    at.text_input[3].set_value("short")
    at.text_input[4].set_value("short")
    at.button[0].click().run()
    assert "too short" in at.error[0].value
    with sessions() as s:
        assert s.scalar(select(User)) is None


def test_signed_out_shows_sign_in_form(sessions):
    add_user(sessions, "alice", "admin")
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    labels = [t.label for t in at.text_input]
    assert labels == ["Username", "Password"]
    assert [b.label for b in at.button] == ["Sign in"]


def test_wrong_password_is_refused_and_counted(sessions):
    add_user(sessions, "alice", "admin")
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.text_input[0].set_value("alice")
    at.text_input[1].set_value("not-the-password")
    at.button[0].click().run()
    assert not at.exception
    assert any("Wrong username or password" in e.value for e in at.error)
    with sessions() as s:
        from core.store.tables import LoginFailure

        assert len(s.scalars(select(LoginFailure)).all()) == 1


def test_five_failures_lock_the_account(sessions):
    add_user(sessions, "alice", "admin")
    at = AppTest.from_file(APP, default_timeout=30).run()
    for _ in range(5):
        at.text_input[0].set_value("alice")
        at.text_input[1].set_value("not-the-password")
        at.button[0].click().run()
    # The same words as any failure: the reply does not tell that "alice" exists.
    assert [e.value for e in at.error] == [signin_guard.FAILED]
    # Even the right password is refused while locked, in a fresh session.
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.text_input[0].set_value("alice")
    at.text_input[1].set_value(PASSWORD)
    at.button[0].click().run()
    assert at.session_state["authentication_status"] is not True
    assert [e.value for e in at.error] == [signin_guard.FAILED]


def test_correct_password_signs_in_and_audits(sessions):
    add_user(sessions, "alice", "admin")
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.text_input[0].set_value("alice")
    at.text_input[1].set_value(PASSWORD)
    at.button[0].click().run()
    assert not at.exception
    assert at.title[0].value.startswith("Hello")
    with sessions() as s:
        actions = s.scalars(select(AuditEntry.action)).all()
    assert "user.sign_in" in actions


@pytest.mark.parametrize("role", ["member", "manager", "admin"])
def test_every_page_renders_for_each_role(sessions, role):
    add_user(sessions, f"u-{role}", role)
    at = signed_in(f"u-{role}")
    assert not at.exception
    for page in ROLE_PAGES[role]:
        at.switch_page(page).run()
        assert not at.exception, f"{page} raised for {role}: {at.exception}"
        assert not at.error, f"{page} showed an error for {role}"


@pytest.mark.parametrize("role", ["member", "manager"])
def test_non_admins_cannot_reach_admin_pages(sessions, role):
    add_user(sessions, f"u-{role}", role)
    at = signed_in(f"u-{role}")
    for page in ADMIN_ONLY:
        # Not registered in st.navigation for this role, so it is not routable at all.
        with pytest.raises(ValueError):
            at.switch_page(page)


def test_admin_page_backstop_refuses_a_member_session(sessions):
    """If a page script ever ran for a member, its own guard still stops it."""
    add_user(sessions, "mem", "member")
    from core.accounts.auth import UserInfo  # noqa: F401  (the session value's type)

    at = AppTest.from_file("../app_pages/users.py", default_timeout=30)
    with sessions() as s:
        from core.accounts import auth

        at.session_state["sb_current_user"] = auth.get_user(s, "mem")
    at.run()
    assert any("admins only" in e.value for e in at.error)
    assert not at.dataframe


def test_deactivated_user_with_live_session_is_signed_out(sessions):
    add_user(sessions, "gone", "member")
    with sessions.begin() as s:
        s.scalar(select(User).where(User.username == "gone")).active = False
    at = signed_in("gone")
    assert any("deactivated" in e.value for e in at.error)


def test_models_page_filters(sessions):
    add_user(sessions, "alice", "member")
    at = signed_in("alice")
    at.switch_page("app_pages/models.py").run()
    full = len(at.dataframe[0].value)
    assert full >= 100
    at.multiselect[0].select("anthropic").run()
    df = at.dataframe[0].value
    assert 0 < len(df) < full
    assert set(df["provider"]) == {"anthropic"}
    at.text_input[0].set_value("zzzz-no-such-model").run()
    assert at.info and not at.dataframe


def test_admin_adds_user_through_page(sessions):
    add_user(sessions, "root", "admin")
    at = signed_in("root")
    at.switch_page("app_pages/users.py").run()
    at.text_input(key="new_username").set_value("bob")
    at.text_input(key="new_name").set_value("Bob")
    at.text_input(key="new_team").set_value("Team Red")
    at.text_input(key="new_password").set_value("a-good-long-password")
    at.button[0].click().run()
    assert not at.exception
    assert any("Added member 'bob'" in s.value for s in at.success)
    assert "bob" in set(at.dataframe[0].value["Username"])
    # A duplicate is refused with a message and changes nothing.
    at.text_input(key="new_username").set_value("bob")
    at.text_input(key="new_password").set_value("a-good-long-password")
    at.button[0].click().run()
    assert any("already exists" in e.value for e in at.error)
