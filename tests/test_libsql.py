"""libSQL (the optional ``sqlalchemy-libsql`` dialect) in embedded mode: a local file.

The same migrations and models must work through libSQL's driver, whose quirks differ
from the standard sqlite3 module (no create_function, its own errors, text timestamps).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.accounts import auth
from core.errors import (
    AuthenticationFailed,
    Conflict,
    DatabaseUnavailable,
    InvalidInput,
    LoginLocked,
)
from core.store import audit, db
from core.store.tables import Base, LoginFailure, User
from tests.support.data import PASSWORD, ROUNDS, T0, create_user, row_counts

pytestmark = pytest.mark.libsql
pytest.importorskip("sqlalchemy_libsql", reason="optional libSQL dialect not installed")


@pytest.fixture
def libsql_url(isolated_env: Path) -> str:
    # Embedded mode: no host, an absolute path (hence four slashes).
    return f"sqlite+libsql:///{isolated_env / 'switchboard-libsql.db'}"


@pytest.fixture
def libsql_engine(libsql_url: str) -> Iterator[Engine]:
    engine = db.make_engine(libsql_url)
    db.upgrade_database(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def libsql_sessions(libsql_engine: Engine) -> sessionmaker[Session]:
    return db.make_session_factory(libsql_engine)


def test_libsql_upgrade_creates_schema_and_is_idempotent(libsql_url: str) -> None:
    engine = db.make_engine(libsql_url)
    try:
        assert engine.dialect.driver == "libsql"
        assert db.current_revision(engine) is None
        assert db.upgrade_database(engine) == db.head_revision()
        assert set(inspect(engine).get_table_names()) >= {"users", "teams", "audit_log"}
        assert db.upgrade_database(engine) == db.head_revision()
        assert db.current_revision(engine) == db.head_revision()
    finally:
        engine.dispose()
    assert Path(libsql_url.removeprefix("sqlite+libsql:///")).is_file()


def test_libsql_models_and_migrations_agree(libsql_engine: Engine) -> None:
    with libsql_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ on libSQL: {diff}"


def test_libsql_connections_get_foreign_keys_and_busy_timeout(libsql_engine: Engine) -> None:
    """core's connect listener runs on libSQL's connection type too."""
    with libsql_engine.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar_one() == 5000
    row = {
        "username": "x",
        "display_name": "x",
        "password_hash": "x",
        "role": "member",
        "active": True,
        "created_at": T0,
        "team_id": 999,
    }
    # libSQL's driver raises plain ValueError, which SQLAlchemy cannot map to IntegrityError.
    with (
        pytest.raises((IntegrityError, ValueError), match="FOREIGN KEY"),
        libsql_engine.begin() as conn,
    ):
        conn.execute(insert(User), row)


def test_libsql_users_round_trip(libsql_sessions: sessionmaker[Session]) -> None:
    created = create_user(
        libsql_sessions, "alice", role="admin", team="Research", email="alice@example.com"
    )
    create_user(libsql_sessions, "bob", team="Research")
    with libsql_sessions() as s:
        assert auth.get_user(s, "alice") == created
        assert [(u.username, u.role, u.team) for u in auth.list_users(s)] == [
            ("alice", "admin", "Research"),
            ("bob", "member", "Research"),
        ]
    with pytest.raises(Conflict):
        create_user(libsql_sessions, "alice")
    with pytest.raises(InvalidInput):
        create_user(libsql_sessions, "carol", role="owner")
    assert auth.verify_login(libsql_sessions, "alice", PASSWORD, T0).role == "admin"


def test_libsql_check_constraint_rejects_bad_role(libsql_engine: Engine) -> None:
    row = {
        "username": "m",
        "display_name": "m",
        "password_hash": "x",
        "role": "superuser",
        "active": True,
        "created_at": T0,
    }
    with (
        pytest.raises((IntegrityError, ValueError), match="CHECK constraint"),
        libsql_engine.begin() as conn,
    ):
        conn.execute(insert(User), row)


def test_libsql_lockout(libsql_sessions: sessionmaker[Session]) -> None:
    create_user(libsql_sessions, "alice")
    for minute in range(auth.LOCKOUT_THRESHOLD):
        with pytest.raises(AuthenticationFailed):
            auth.verify_login(
                libsql_sessions, "alice", "wrong-password-123", T0 + timedelta(minutes=minute)
            )
    ends = T0 + timedelta(minutes=auth.LOCKOUT_THRESHOLD - 1) + auth.LOCKOUT_DURATION
    with pytest.raises(LoginLocked):
        auth.verify_login(libsql_sessions, "alice", PASSWORD, T0 + timedelta(minutes=6))
    with libsql_sessions() as s:
        assert auth.locked_until(s, "alice", ends) is None


def test_libsql_timestamps_come_back_aware_utc(
    libsql_engine: Engine, libsql_sessions: sessionmaker[Session]
) -> None:
    create_user(libsql_sessions, "alice", now=T0.astimezone(timezone(timedelta(hours=-5))))
    with libsql_sessions.begin() as s:
        auth.record_login_failure(s, "alice", T0)
    with libsql_sessions() as s:
        values = [
            auth.get_user(s, "alice").created_at,
            audit.recent(s)[0].at,
            s.scalar(select(LoginFailure.at)),
        ]
    for value in values:
        assert value is not None
        assert value.tzinfo is UTC
        assert value == T0
    with libsql_engine.connect() as conn:
        raw = conn.execute(text("SELECT created_at FROM users")).scalar_one()
    assert datetime.fromisoformat(raw) == T0.replace(tzinfo=None)  # naive UTC text


def test_libsql_failed_transaction_leaves_nothing_behind(
    libsql_sessions: sessionmaker[Session],
) -> None:
    """libSQL's driver manages transactions itself; a rollback must still undo everything."""
    with pytest.raises(InvalidInput):
        create_user(libsql_sessions, "carol", team="NewTeam", password="short")
    with pytest.raises(RuntimeError), libsql_sessions.begin() as s:
        auth.create_user(
            s,
            username="carol",
            password=PASSWORD,
            role="member",
            team="NewTeam",
            actor="test",
            now=T0,
            rounds=ROUNDS,
        )
        raise RuntimeError("the caller's next step failed")
    assert row_counts(libsql_sessions) == (0, 0, 0)


def test_unreachable_libsql_server_is_database_unavailable() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: connecting is refused at once
        port = sock.getsockname()[1]
        engine = db.make_engine(f"sqlite+libsql://127.0.0.1:{port}?secure=false")
        try:
            with pytest.raises(DatabaseUnavailable, match="Cannot reach the database"):
                db.check_connection(engine)
        finally:
            engine.dispose()
