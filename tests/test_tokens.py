"""core.accounts.tokens, `switchboard token`: hashed storage, authentication, throttled last use."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, select, update

from core.accounts import tokens
from core.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound
from core.request import Caller
from core.store import audit
from core.store.tables import AuditEntry, GatewayToken, User
from tests.conftest import add_user
from tests.support.cli import run_cli

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
TOKEN_RE = re.compile(r"sb-[A-Za-z0-9_-]{43}")


def create(sessions, username="alice", name=None, now=T0):
    with sessions.begin() as s:
        return tokens.create_token(s, username=username, name=name, actor="admin", now=now)


def authenticate(sessions, token, now=T0):
    with sessions.begin() as s:
        return tokens.authenticate_token(s, token, now)


def test_create_stores_only_hash_and_prefix(sessions):
    add_user(sessions, "alice", team="Red")
    token, info = create(sessions)
    assert TOKEN_RE.fullmatch(token)
    assert (info.name, info.username, info.prefix) == ("default", "alice", token[:8])
    assert (info.created_at, info.last_used_at, info.revoked) == (T0, None, False)
    with sessions() as s:
        row = s.scalar(select(GatewayToken))
        assert row.token_hash == tokens.hash_token(token) and len(row.token_hash) == 64
        assert token not in (row.token_hash, row.prefix, row.name)
        (entry,) = audit.recent(s, action="token.create")
    assert (entry.actor, entry.target, dict(entry.details)) == (
        "admin",
        "alice/default",
        {"prefix": token[:8]},
    )


def test_tokens_are_unique(sessions):
    add_user(sessions, "alice")
    first, _ = create(sessions, name="a")
    second, _ = create(sessions, name="b")
    assert first != second


def test_authenticate_returns_the_caller(sessions):
    user = add_user(sessions, "alice", "manager", team="Red")
    token, _ = create(sessions, name="ci")
    caller = authenticate(sessions, token)
    with sessions() as s:
        team_id = s.scalar(select(User.team_id).where(User.username == "alice"))
    assert caller == Caller(
        user_id=user.id, username="alice", role="manager", team_id=team_id, token_name="ci"
    )
    assert team_id is not None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: t.upper(),
        lambda t: t + "x",
        lambda t: t[3:],
        lambda t: "",
        lambda t: "Bearer " + t,
        lambda t: "sb-",
    ],
)
def test_wrong_tokens_are_refused(sessions, mangle):
    add_user(sessions, "alice")
    token, _ = create(sessions)
    with pytest.raises(AuthenticationFailed) as caught:
        authenticate(sessions, mangle(token))
    assert caught.value.message == tokens.AUTH_FAILED_MESSAGE


def test_revoked_token_is_refused_and_revoke_is_idempotent(sessions):
    add_user(sessions, "alice")
    token, _ = create(sessions)
    later = T0 + timedelta(hours=1)
    with sessions.begin() as s:
        info = tokens.revoke_token(s, username="alice", name="default", actor="admin", now=later)
    assert info.revoked_at == later and info.revoked
    with pytest.raises(AuthenticationFailed, match="Invalid or revoked gateway token"):
        authenticate(sessions, token, later)
    with sessions.begin() as s:
        again = tokens.revoke_token(
            s, username="alice", name="default", actor="admin", now=later + timedelta(hours=1)
        )
    assert again.revoked_at == later
    with sessions() as s:
        assert len(audit.recent(s, action="token.revoke")) == 1


def test_inactive_user_is_refused(sessions):
    add_user(sessions, "alice")
    token, _ = create(sessions)
    with sessions.begin() as s:
        s.execute(update(User).values(active=False))
    with pytest.raises(AuthenticationFailed):
        authenticate(sessions, token)
    with pytest.raises(InvalidInput, match="inactive"):
        create(sessions, name="other")


def test_last_used_is_written_at_most_once_a_minute(sessions, engine):
    add_user(sessions, "alice")
    token, _ = create(sessions)
    updates: list[str] = []
    event.listen(
        engine,
        "before_cursor_execute",
        lambda *a: updates.append(a[2]) if a[2].startswith("UPDATE") else None,
    )

    def last_used():
        with sessions() as s:
            return s.scalar(select(GatewayToken.last_used_at))

    authenticate(sessions, token, T0)
    assert last_used() == T0 and len(updates) == 1
    for seconds in (1, 30, 59):
        authenticate(sessions, token, T0 + timedelta(seconds=seconds))
    assert last_used() == T0 and len(updates) == 1  # no write per request
    authenticate(sessions, token, T0 + timedelta(seconds=61))
    assert last_used() == T0 + timedelta(seconds=61) and len(updates) == 2


def test_create_validates_names_users_and_duplicates(sessions):
    add_user(sessions, "alice")
    create(sessions, name="laptop.v2_x-1")
    with pytest.raises(Conflict, match=re.escape("active token named 'laptop.v2_x-1'")):
        create(sessions, name="laptop.v2_x-1")
    for bad in ("", "has space", "x" * 65, "slash/name", "é"):
        with pytest.raises(InvalidInput, match="not allowed"):
            create(sessions, name=bad)
    with pytest.raises(NotFound, match="No user named 'ghost'"):
        create(sessions, username="ghost")


def test_a_revoked_name_can_be_reused_and_the_old_token_stays_dead(sessions):
    add_user(sessions, "alice")
    old, _ = create(sessions, name="ci")
    with sessions.begin() as s:
        tokens.revoke_token(s, username="alice", name="ci", actor="admin", now=T0)
    new, info = create(sessions, name="ci", now=T0 + timedelta(days=1))
    assert not info.revoked and authenticate(sessions, new).token_name == "ci"
    with pytest.raises(AuthenticationFailed):
        authenticate(sessions, old)


def test_list_and_revoke_errors(sessions):
    add_user(sessions, "alice")
    add_user(sessions, "bob")
    create(sessions, "bob", "z")
    create(sessions, "alice", "b")
    create(sessions, "alice", "a")
    with sessions() as s:
        assert [(t.username, t.name) for t in tokens.list_tokens(s, None)] == [
            ("alice", "a"),
            ("alice", "b"),
            ("bob", "z"),
        ]
        assert [t.name for t in tokens.list_tokens(s, "bob")] == ["z"]
        with pytest.raises(NotFound):
            tokens.list_tokens(s, "ghost")
        with pytest.raises(NotFound, match="has no token named 'nope'"):
            tokens.revoke_token(s, username="alice", name="nope", actor="x", now=T0)


# ---- `switchboard token` ----------------------------------------------------------------


def run(*argv: str) -> tuple[int, str, str]:
    return run_cli(*argv, clock=lambda: T0)


def test_cli_create_shows_token_once_and_never_stores_it(monkeypatch, sessions, isolated_env):
    add_user(sessions, "alice")
    code, out, err = run("token", "create", "alice", "--name", "ci")
    assert (code, err) == (0, "")
    (token,) = TOKEN_RE.findall(out)
    assert out.count(token) == 1 and "will not be shown again" in out
    assert authenticate(sessions, token).username == "alice"

    code, out, _ = run("token", "list")
    assert code == 0 and token not in out
    line = next(ln for ln in out.splitlines() if ln.startswith("alice"))
    assert "ci" in line and token[:8] in line and "active" in line

    with sessions() as s:
        audit_text = repr([(e.target, e.details) for e in s.scalars(select(AuditEntry))])
    assert token not in audit_text
    raw = b"".join(p.read_bytes() for p in Path(isolated_env).glob("switchboard.db*"))
    assert any(p.name.endswith("-wal") for p in Path(isolated_env).iterdir())
    assert token.encode() not in raw
    assert tokens.hash_token(token).encode() in raw  # proves we read the written pages


def test_cli_list_filters_and_revoke(monkeypatch, sessions):
    add_user(sessions, "alice")
    add_user(sessions, "bob")
    run("token", "create", "alice")
    run("token", "create", "bob", "--name", "ci")
    code, out, _ = run("token", "list", "--user", "bob")
    assert code == 0 and "bob" in out and "alice" not in out
    code, out, _ = run("token", "revoke", "bob", "ci")
    assert code == 0 and "Revoked token 'ci' of bob" in out
    code, out, _ = run("token", "list", "--user", "bob")
    assert "revoked 2026-11-02 09:00" in out


def test_cli_list_when_empty_says_how_to_start(monkeypatch, isolated_env):
    code, out, _ = run("token", "list")
    assert code == 0 and "switchboard token create USERNAME" in out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("token", "create", "ghost"), "No user named 'ghost'"),
        (("token", "create", "alice", "--name", "bad name"), "not allowed"),
        (("token", "create", "alice", "--name", ""), "not allowed"),
        (("token", "revoke", "alice", "nope"), "has no token named 'nope'"),
        (("token", "revoke", "ghost", "x"), "No user named 'ghost'"),
        (("token", "list", "--user", "ghost"), "No user named 'ghost'"),
    ],
)
def test_cli_bad_input_gets_one_clear_line(monkeypatch, sessions, argv, fragment):
    add_user(sessions, "alice")
    code, out, err = run(*argv)
    assert code == 2 and out == ""
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_duplicate_name_is_refused(monkeypatch, sessions):
    add_user(sessions, "alice")
    assert run("token", "create", "alice")[0] == 0
    code, _, err = run("token", "create", "alice")
    assert code == 2 and "already has an active token named 'default'" in err
