"""Issue 20, findings 2 and 6: revocable sessions; sign-in failures that tell nothing.

A wrong password, an unknown username, a locked account and a throttled address get
the same words and cost the same (one bcrypt check at the production cost, the same
queries). One address cannot lock an account on its own. Sign-out, password change or
reset, deactivation and role change void every earlier sign-in of that user.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import bcrypt
import pytest
from sqlalchemy.orm import Session, sessionmaker
from streamlit.testing.v1 import AppTest

from core.accounts import auth, sessions, signin_guard
from core.store.tables import User
from tests.conftest import PASSWORD, add_user
from tests.support.pages import APP, signed_in

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEY = "cookie-key-for-tests-0123456789abcdef"


@pytest.fixture
def bcrypt_costs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The cost factor of every bcrypt check made, in order."""
    costs: list[int] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        costs.append(int(hashed.split(b"$")[2]))
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    return costs


def _try(name: str, password: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input[0].set_value(name)
    at.text_input[1].set_value(password)
    at.button[0].click().run()
    assert not at.exception
    return at


def test_unknown_wrong_and_locked_get_the_same_reply_and_the_same_work(
    sessions: sessionmaker[Session], bcrypt_costs: list[int]
) -> None:
    with sessions.begin() as s:  # production-cost hash, as a real account has
        auth.create_user(
            s, username="alice", password=PASSWORD, role="admin", actor="t", now=T0,
        )  # fmt: skip
    replies = {}
    for label, name in (("wrong", "alice"), ("unknown", "mallory")):
        bcrypt_costs.clear()
        replies[label] = ([e.value for e in _try(name, "not-the-password").error], bcrypt_costs[:])
    for _ in range(4):  # five failures in all: alice is locked
        _try("alice", "not-the-password")
    bcrypt_costs.clear()
    replies["locked"] = ([e.value for e in _try("alice", PASSWORD).error], bcrypt_costs[:])
    expected = ([signin_guard.FAILED], [auth.BCRYPT_ROUNDS])
    assert replies == {"wrong": expected, "unknown": expected, "locked": expected}


def test_one_address_cannot_lock_an_account_but_is_itself_paused(
    sessions: sessionmaker[Session],
) -> None:
    user = add_user(sessions, "alice")
    with sessions() as s:
        hashed = s.get(User, user.id).password_hash  # type: ignore[union-attr]

    def attempt(address: str, password: str, at: datetime) -> bool:
        return signin_guard.check_sign_in(sessions, "alice", password, hashed, address, at)

    for i in range(10):
        assert not attempt("203.0.113.7", "wrong", T0 + timedelta(seconds=i))
    now = T0 + timedelta(seconds=11)
    with sessions() as s:
        assert auth.locked_until(s, "alice", now) is None  # one address alone: not locked
        assert auth.address_locked_until(s, "203.0.113.7", now) is not None
    assert not attempt("203.0.113.7", PASSWORD, now)  # that address is paused...
    assert attempt("198.51.100.2", PASSWORD, now)  # ...the owner elsewhere signs in
    # Failures from several addresses still lock the account.
    for i, address in enumerate(["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"]):
        assert not attempt(address, "wrong", now + timedelta(seconds=i))
    with sessions() as s:
        assert auth.locked_until(s, "alice", now + timedelta(seconds=6)) is not None
    assert not attempt("198.51.100.2", PASSWORD, now + timedelta(seconds=6))


# --- revocable sessions -----------------------------------------------------------------


def test_a_cookie_carries_its_issue_time_and_a_forged_or_old_one_is_refused() -> None:
    token = sessions.cookie_token("alice", T0, timedelta(days=7), KEY)
    claims = sessions.read_cookie(token, KEY, T0 + timedelta(days=1))
    assert claims is not None and (claims.username, claims.issued) == ("alice", T0)
    assert sessions.read_cookie(token, KEY, T0 + timedelta(days=8)) is None  # expired
    assert sessions.read_cookie(token, "another-key-0123456789abcdef0000", T0) is None
    import jwt

    legacy = jwt.encode({"username": "alice", "exp_date": 2e9}, KEY, algorithm="HS256")
    assert sessions.read_cookie(legacy, KEY, T0) is None  # no issue time: sign in again


CHANGES: dict[str, Any] = {
    "password change": lambda s, now: auth.change_password(
        s, username="alice", current=PASSWORD, new_password="brand-new-password-1",
        now=now, rounds=4,
    ),
    "password reset": lambda s, now: auth.reset_password(
        s, username="alice", new_password="brand-new-password-1", actor="root", now=now, rounds=4
    ),
    "role change": lambda s, now: auth.set_role(
        s, username="alice", role="manager", actor="root", now=now
    ),
    "deactivation": lambda s, now: auth.set_active(
        s, username="alice", active=False, actor="root", now=now
    ),
    "sign-out elsewhere": lambda s, now: sessions.end_sessions(s, "alice", now),
}  # fmt: skip


@pytest.mark.parametrize("change", list(CHANGES))
def test_each_change_voids_earlier_sign_ins_but_not_later_ones(
    sessions: sessionmaker[Session], change: str
) -> None:
    add_user(sessions, "root", "admin")
    add_user(sessions, "alice", "admin")
    with sessions.begin() as s:
        CHANGES[change](s, T0)
    with sessions() as s:
        assert auth.find_session_user(s, "alice", T0 - timedelta(seconds=1)) is None
        assert auth.find_session_user(s, "alice", T0) is None
        later = auth.find_session_user(s, "alice", T0 + timedelta(seconds=1))
    assert (later is None) == (change == "deactivation")


def test_a_live_dashboard_session_ends_at_its_next_run_after_revocation(
    sessions: sessionmaker[Session],
) -> None:
    add_user(sessions, "alice", "admin")
    at = signed_in("alice")
    assert at.title[0].value.startswith("Hello")
    with sessions.begin() as s:  # another replica: the user signed out there
        end_alices_sessions(s)
    at.run()
    assert at.session_state["authentication_status"] is not True
    assert any("Your session has ended" in e.value for e in at.error)
    at.run()
    assert [t.label for t in at.text_input] == ["Username", "Password"]


def end_alices_sessions(s: Session) -> None:
    sessions.end_sessions(s, "alice", datetime.now(UTC))
