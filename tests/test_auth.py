"""core.accounts.auth and core.store.audit: validation, hashing, lockout with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core.accounts import auth
from core.errors import AuthenticationFailed, Conflict, InvalidInput, LoginLocked
from core.store import audit
from core.store.tables import AuditEntry, Team, User
from tests.conftest import PASSWORD, TEST_ROUNDS, add_user

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("password", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("short", "too short"),
        ("aaaaaaaaaaaa", "easy to guess"),
        ("password123", "easy to guess"),
        ("xx-alice-xx-1", "username"),
    ],
)
def test_weak_passwords_are_refused(password, fragment):
    with pytest.raises(InvalidInput, match=fragment):
        auth.check_password_strength(password, "alice")


@pytest.mark.parametrize("name", ["", "A", "Alice", "has space", "-dash", "x" * 65, "é"])
def test_bad_usernames_are_refused(name):
    with pytest.raises(InvalidInput, match="not allowed"):
        auth.validate_username(name)


def test_create_user_hashes_with_bcrypt_and_audits_without_secrets(sessions):
    user = add_user(sessions, "alice", "manager", team="Red")
    assert (user.role, user.team, user.active) == ("manager", "Red", True)
    with sessions() as s:
        row = s.scalar(select(User).where(User.username == "alice"))
        assert row.password_hash.startswith("$2b$04$")
        assert auth.password_matches(PASSWORD, row.password_hash)
        entries = audit.recent(s)
    assert [e.action for e in entries] == ["user.create", "team.create"]
    assert all(PASSWORD not in repr(e) and "$2b$" not in repr(e) for e in entries)


def test_duplicate_username_is_a_conflict_and_writes_nothing(sessions):
    add_user(sessions, "alice")
    with pytest.raises(Conflict, match="already exists"):
        add_user(sessions, "alice", team="New Team")
    with sessions() as s:
        assert s.scalars(select(Team)).all() == []
        assert len(s.scalars(select(AuditEntry)).all()) == 1


def test_unknown_role_and_bad_email_are_refused(sessions):
    with pytest.raises(InvalidInput, match="Unknown role 'owner'"):
        add_user(sessions, "alice", role="owner")
    with sessions.begin() as s, pytest.raises(InvalidInput, match="email"):
        auth.create_user(
            s,
            username="bob",
            password=PASSWORD,
            role="member",
            actor="t",
            now=T0,
            email="not-an-email",
            rounds=TEST_ROUNDS,
        )


def test_first_admin_only_once(sessions):
    with sessions.begin() as s:
        auth.create_first_admin(s, username="root", password=PASSWORD, now=T0, rounds=TEST_ROUNDS)
    with sessions.begin() as s, pytest.raises(Conflict):
        auth.create_first_admin(s, username="other", password=PASSWORD, now=T0)


def test_audit_refuses_secret_looking_details(sessions):
    with sessions.begin() as s, pytest.raises(ValueError, match="secrets"):
        audit.record(s, actor="a", action="x", target="y", now=T0, details={"api_key": "k"})


def _fail(sessions, name: str, at: datetime) -> None:
    with pytest.raises((AuthenticationFailed, LoginLocked)):
        auth.verify_login(sessions, name, "wrong-password", at)


def test_lockout_after_five_failures_in_fifteen_minutes(sessions):
    add_user(sessions, "alice")
    for i in range(4):
        _fail(sessions, "alice", T0 + timedelta(minutes=i))
    user = auth.verify_login(sessions, "alice", PASSWORD, T0 + timedelta(minutes=5))
    assert user.username == "alice"
    # Success cleared the history; five fresh failures lock it.
    for i in range(5):
        _fail(sessions, "alice", T0 + timedelta(minutes=10 + i))
    locked_at = T0 + timedelta(minutes=15)
    with pytest.raises(LoginLocked, match="locked for 14 more minutes"):
        auth.verify_login(sessions, "alice", PASSWORD, locked_at)
    assert auth.verify_login(sessions, "alice", PASSWORD, T0 + timedelta(minutes=29, seconds=1))


def test_failures_spread_over_more_than_the_window_do_not_lock(sessions):
    add_user(sessions, "alice")
    for i in range(5):
        _fail(sessions, "alice", T0 + timedelta(minutes=4 * i))  # spans 16 minutes
    with sessions() as s:
        assert auth.locked_until(s, "alice", T0 + timedelta(minutes=17)) is None


def test_lockout_message_counts_down(sessions):
    add_user(sessions, "alice")
    for _ in range(5):
        _fail(sessions, "alice", T0)
    with sessions() as s:
        until = auth.locked_until(s, "alice", T0 + timedelta(minutes=14, seconds=30))
    assert until == T0 + timedelta(minutes=15)
    msg = auth.lock_message(until, T0 + timedelta(minutes=14, seconds=30))
    assert "1 more minute;" in msg.message and msg.retry_after_s == 30


def test_inactive_user_cannot_sign_in(sessions):
    add_user(sessions, "alice")
    with sessions.begin() as s:
        s.scalar(select(User).where(User.username == "alice")).active = False
    with pytest.raises(AuthenticationFailed):
        auth.verify_login(sessions, "alice", PASSWORD, T0)


def test_locked_usernames_matches_locked_until(sessions):
    for name in ("alice", "bob", "carol"):
        add_user(sessions, name)
    for _ in range(5):
        _fail(sessions, "alice", T0)
    for i in range(5):
        _fail(sessions, "bob", T0 + timedelta(minutes=4 * i))  # spread over 16 minutes
    _fail(sessions, "carol", T0)
    at = T0 + timedelta(minutes=17)
    with sessions() as s:
        assert auth.locked_usernames(s, T0 + timedelta(minutes=1)) == {"alice"}
        assert auth.locked_usernames(s, at) == {
            n for n in ("alice", "bob", "carol") if auth.locked_until(s, n, at)
        }
