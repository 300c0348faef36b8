"""Data-layer tests: schema upgrades, users, lockout and timestamps on SQLite and PostgreSQL.

Every backend test runs twice: against a SQLite file and against a real PostgreSQL server
started by tests.support.postgres (a fresh database per test). The error-message tests
need no server at all.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from core.accounts import auth
from core.errors import (
    AuthenticationFailed,
    ConfigError,
    Conflict,
    DatabaseUnavailable,
    InvalidInput,
    LoginLocked,
)
from core.store import audit, db
from core.store.tables import Base, LoginFailure, User
from tests.support.data import PASSWORD, ROUNDS, T0, create_user, row_counts

APP_TABLES = {"users", "teams", "login_failures", "audit_log"}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """A URL for an empty database on each backend."""
    if request.param == "sqlite":
        return os.environ["SWITCHBOARD_DB_URL"]  # a per-test file, set by isolated_env
    # Looked up lazily so SQLite-only runs never start a PostgreSQL server.
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def db_engine(db_url: str) -> Iterator[Engine]:
    engine = db.make_engine(db_url)
    db.upgrade_database(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def db_sessions(db_engine: Engine) -> sessionmaker[Session]:
    return db.make_session_factory(db_engine)


def _fail_login(sessions: sessionmaker[Session], username: str, now: datetime) -> None:
    # verify_login commits the failure itself before raising.
    with pytest.raises(AuthenticationFailed):
        auth.verify_login(sessions, username, "wrong-password-123", now)


# --------------------------------------------------------------------------- schema


def test_upgrade_creates_schema_and_is_idempotent(db_url: str) -> None:
    engine = db.make_engine(db_url)
    try:
        assert db.current_revision(engine) is None
        assert db.upgrade_database(engine) == db.head_revision()
        assert set(inspect(engine).get_table_names()) >= APP_TABLES
        create_user(db.make_session_factory(engine), "alice")
        # A second run (every start-up does one) must be a no-op: no error, no data lost.
        assert db.upgrade_database(engine) == db.head_revision()
        assert db.current_revision(engine) == db.head_revision()
        assert row_counts(db.make_session_factory(engine)) == (1, 0, 1)
    finally:
        engine.dispose()


def test_models_and_migrations_agree(db_engine: Engine) -> None:
    """The schema the migrations build is exactly what core.store.tables declares."""
    with db_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ; write a migration: {diff}"


def test_0007_gives_existing_ledger_rows_zero_tokens_and_null_versions(db_url: str) -> None:
    """Rows written before 0007 survive it with 0 tokens and NULL price version / metadata."""
    from alembic import command
    from alembic.config import Config

    engine = db.make_engine(db_url)
    try:
        cfg = Config()
        cfg.set_main_option("script_location", str(db.MIGRATIONS_DIR))
        cfg.attributes["engine"] = engine
        command.upgrade(cfg, "0006")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO requests (id, at, username, source, task, requested_model, "
                    "route_source, chain, prompt_tokens, completion_tokens, cached_tokens, "
                    "reasoning_tokens, priced, latency_ms, status, fallback_used, attempt_count) "
                    "VALUES ('old', :at, 'alice', 'api', '', 'm/x', 'org', '[]', 1, 2, 0, 0, "
                    ":t, 5, 'success', :f, 1)"
                ),
                {"at": T0.replace(tzinfo=None), "t": True, "f": False},
            )
            conn.execute(
                text(
                    "INSERT INTO attempts (request_id, seq, at, model, provider, outcome, "
                    "latency_ms, prompt_tokens, completion_tokens, priced) "
                    "VALUES ('old', 1, :at, 'm/x', 'm', 'ok', 5, 1, 2, :t)"
                ),
                {"at": T0.replace(tzinfo=None), "t": True},
            )
        assert db.upgrade_database(engine) == db.head_revision()
        with engine.connect() as conn:
            attempt = conn.execute(
                text("SELECT cached_tokens, reasoning_tokens, price_version FROM attempts")
            ).one()
            metadata = conn.execute(text("SELECT request_metadata FROM requests")).scalar()
        assert tuple(attempt) == (0, 0, None)
        assert metadata is None
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- users


def test_users_round_trip(db_sessions: sessionmaker[Session]) -> None:
    created = create_user(
        db_sessions,
        "alice",
        role="admin",
        team="Research",
        display_name="Alice A.",
        email="alice@example.com",
    )
    create_user(db_sessions, "bob", team="Research")

    with db_sessions() as s:
        alice = auth.get_user(s, "alice")
        assert alice == created
        assert (alice.role, alice.team, alice.display_name, alice.email, alice.active) == (
            "admin",
            "Research",
            "Alice A.",
            "alice@example.com",
            True,
        )
        assert [u.username for u in auth.list_users(s)] == ["alice", "bob"]
        assert auth.count_users(s) == 2
        stored = s.scalar(select(User.password_hash).where(User.username == "alice"))
        assert stored and PASSWORD not in stored
        actions = sorted(r.action for r in audit.recent(s))
    # The shared team is created (and audited) once.
    assert actions == ["team.create", "user.create", "user.create"]

    assert auth.verify_login(db_sessions, "Alice", PASSWORD, T0).username == "alice"


def test_duplicate_username_is_conflict(db_sessions: sessionmaker[Session]) -> None:
    create_user(db_sessions, "alice")
    with pytest.raises(Conflict, match="already exists"):
        create_user(db_sessions, "alice", role="admin")
    assert row_counts(db_sessions)[0] == 1


def test_unknown_role_is_invalid_input(db_sessions: sessionmaker[Session]) -> None:
    with pytest.raises(InvalidInput, match="Unknown role 'owner'"):
        create_user(db_sessions, "alice", role="owner")


def test_check_constraint_rejects_bad_role(db_engine: Engine) -> None:
    """Even a write that bypasses core.accounts.auth cannot store an unknown role."""
    row = {
        "username": "mallory",
        "display_name": "M",
        "password_hash": "x",
        "role": "superuser",
        "active": True,
        "created_at": T0,
    }
    with pytest.raises(IntegrityError), db_engine.begin() as conn:
        conn.execute(insert(User), row)


def test_lockout_holds_across_replicas(db_url: str, db_sessions: sessionmaker[Session]) -> None:
    """Failures seen by one app process lock the account for every other process."""
    create_user(db_sessions, "alice")
    replica = db.make_engine(db_url)  # a second process's engine on the same database
    try:
        other = db.make_session_factory(replica)
        for minute in range(auth.LOCKOUT_THRESHOLD):
            _fail_login(db_sessions, "alice", T0 + timedelta(minutes=minute))
        last = T0 + timedelta(minutes=auth.LOCKOUT_THRESHOLD - 1)
        ends = last + auth.LOCKOUT_DURATION

        with other() as s:
            assert auth.locked_until(s, "alice", last + timedelta(seconds=1)) == ends
        with pytest.raises(LoginLocked) as locked:
            auth.verify_login(other, "alice", PASSWORD, last + timedelta(minutes=1))
        assert locked.value.retry_after_s == 14 * 60
        with other() as s:
            assert auth.locked_until(s, "alice", ends) is None  # the lock has ended
        assert auth.verify_login(other, "alice", PASSWORD, ends + timedelta(seconds=1))
        # Success clears the history, so old failures cannot add up to a new lock.
        with db_sessions() as s:
            assert s.scalar(select(func.count(LoginFailure.id))) == 0
    finally:
        replica.dispose()


def test_four_failures_do_not_lock(db_sessions: sessionmaker[Session]) -> None:
    create_user(db_sessions, "alice")
    for minute in range(auth.LOCKOUT_THRESHOLD - 1):
        _fail_login(db_sessions, "alice", T0 + timedelta(minutes=minute))
    with db_sessions() as s:
        assert auth.locked_until(s, "alice", T0 + timedelta(minutes=5)) is None


# --------------------------------------------------------------------------- timestamps


def test_timestamps_come_back_aware_utc(
    db_engine: Engine, db_sessions: sessionmaker[Session]
) -> None:
    # An aware non-UTC input must be converted, not stored as its wall-clock time.
    local = T0.astimezone(timezone(timedelta(hours=2)))
    create_user(db_sessions, "alice", now=local)
    with db_sessions.begin() as s:
        auth.record_login_failure(s, "alice", local)

    with db_sessions() as s:
        values = [
            auth.get_user(s, "alice").created_at,
            audit.recent(s)[0].at,
            s.scalar(select(LoginFailure.at)),
        ]
    for value in values:
        assert value is not None
        assert value.tzinfo is UTC
        assert value == T0  # same instant, microseconds kept

    with db_engine.connect() as conn:
        raw = conn.execute(text("SELECT created_at FROM users")).scalar_one()
    stored = datetime.fromisoformat(raw) if isinstance(raw, str) else raw
    assert stored == T0.replace(tzinfo=None), "timestamps must be stored as naive UTC"


def test_naive_timestamps_are_refused(db_sessions: sessionmaker[Session]) -> None:
    """A naive datetime could be local time; the column refuses it rather than guess."""
    with pytest.raises(StatementError, match="naive datetime"):
        create_user(db_sessions, "alice", now=T0.replace(tzinfo=None))
    assert row_counts(db_sessions) == (0, 0, 0)


# --------------------------------------------------------------------------- atomicity


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"password": "short"}, "too short"),
        ({"password": "password123"}, "too easy"),
        ({"role": "owner"}, "Unknown role"),
        ({"email": "not-an-email"}, "email"),
        ({"username": "Bad Name!"}, "not allowed"),
        ({"team": "bad/team"}, "Team name"),
    ],
    ids=["short-password", "common-password", "role", "email", "username", "team-name"],
)
def test_failed_create_user_leaves_nothing_behind(
    db_sessions: sessionmaker[Session], overrides: dict[str, str], message: str
) -> None:
    args: dict[str, Any] = {"username": "carol", "team": "NewTeam", **overrides}
    with pytest.raises(InvalidInput, match=message):
        create_user(db_sessions, **args)
    assert row_counts(db_sessions) == (0, 0, 0)


def test_conflict_does_not_create_the_team(db_sessions: sessionmaker[Session]) -> None:
    create_user(db_sessions, "carol")
    before = row_counts(db_sessions)
    with pytest.raises(Conflict):
        create_user(db_sessions, "carol", team="NewTeam")
    assert row_counts(db_sessions) == before


def test_failure_later_in_the_transaction_rolls_everything_back(
    db_sessions: sessionmaker[Session],
) -> None:
    """User, team and audit rows commit together or not at all."""
    with pytest.raises(RuntimeError), db_sessions.begin() as s:
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
    assert row_counts(db_sessions) == (0, 0, 0)


# --------------------------------------------------------------------------- SQLite


def test_sqlite_connections_get_wal_foreign_keys_and_busy_timeout(isolated_env: Path) -> None:
    engine = db.make_engine(os.environ["SWITCHBOARD_DB_URL"])
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar_one() == 5000
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- URL errors


@pytest.mark.parametrize("raw", ["not a url", "sqlite//x", ""], ids=["prose", "no-colon", "empty"])
def test_malformed_url_names_the_setting(raw: str) -> None:
    with pytest.raises(ConfigError, match="SWITCHBOARD_DB_URL is malformed"):
        db.parse_db_url(raw)
    with pytest.raises(ConfigError, match="SWITCHBOARD_DB_URL"):
        db.make_engine(raw)


def test_unsupported_scheme_is_config_error() -> None:
    with pytest.raises(ConfigError, match="uses 'mysql', which Switchboard does not support"):
        db.make_engine("mysql://u@h/db")


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_postgresql_scheme_uses_psycopg(scheme: str) -> None:
    url = db.parse_db_url(f"{scheme}://u:pw@db.example:5432/switchboard")
    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.password, url.host, url.database) == (
        "u",
        "pw",
        "db.example",
        "switchboard",
    )
    engine = db.make_engine(f"{scheme}://u:pw@db.example:5432/switchboard")  # no connection yet
    assert engine.dialect.driver == "psycopg"
    engine.dispose()


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A 127.0.0.1 port that is bound but not listening, so connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.mark.parametrize(
    "step", [db.check_connection, db.upgrade_database], ids=["check_connection", "upgrade"]
)
def test_unreachable_postgres_is_database_unavailable(refused_port: int, step: Any) -> None:
    secret = "s3cret-Pa55word"
    engine = db.make_engine(
        f"postgresql://switchboard:{secret}@127.0.0.1:{refused_port}/sb?connect_timeout=2"
    )
    started = time.monotonic()
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            step(engine)
    finally:
        engine.dispose()
    message = caught.value.message
    assert "Cannot reach the database" in message
    assert f"127.0.0.1:{refused_port}" in message
    assert secret not in message and secret not in str(caught.value)
    assert "\n" not in message
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("raw", "secret"),
    [
        ("postgresql://sb@db.example:5432/sb?password=s3cretQ", "s3cretQ"),
        ("sqlite+libsql://x.turso.io?secure=true&authToken=eyJ.tok3n", "eyJ.tok3n"),
    ],
    ids=["pg-password-param", "libsql-auth-token"],
)
def test_describe_url_hides_secrets_in_the_query(raw: str, secret: str) -> None:
    assert secret not in db.describe_url(db.parse_db_url(raw))


# --------------------------------------------------------------------------- read-only data


ROOT = Path(__file__).resolve().parent.parent
NOBODY = 65534


def _core_cli_as_unprivileged(*args: str) -> list[str]:
    """`python -m core ARGS`, run as `nobody` when we are root.

    As root, every folder is writable, so only another user sees a read-only folder.
    setpriv keeps CAP_DAC_READ_SEARCH (read and traverse anything, write nothing extra),
    so the venv and the checkout are readable wherever they live, even under 0700 dirs.
    """
    command = [sys.executable, "-m", "core", *args]
    if os.geteuid() != 0:
        return command
    return [
        "setpriv",
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        "--inh-caps=+dac_read_search",
        "--ambient-caps=+dac_read_search",
        "--",
        *command,
    ]


def _clean_env(home: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",  # nobody cannot write __pycache__ in the repo
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        **extra,
    }


@pytest.fixture
def unwritable_dir() -> Iterator[Path]:
    """A folder the unprivileged user can enter but not write (root-owned 0755 as root)."""
    # Not tmp_path: pytest makes its base temp dir 0700, which `nobody` cannot even enter.
    folder = Path(tempfile.mkdtemp(prefix="switchboard-ro-"))
    mode = stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
    if os.geteuid() != 0:
        mode &= ~stat.S_IWUSR  # we are the unprivileged user: drop our own write bit
    folder.chmod(mode)
    yield folder
    folder.chmod(stat.S_IRWXU)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize(
    ("relative", "expected"),
    [("sub/x.db", "Cannot create the data folder"), ("x.db", "is read-only")],
    ids=["folder-cannot-be-created", "folder-not-writable"],
)
def test_init_on_read_only_data_folder_fails_cleanly(
    unwritable_dir: Path, relative: str, expected: str
) -> None:
    target = unwritable_dir / relative
    env = _clean_env(
        unwritable_dir,
        SWITCHBOARD_DB_URL=f"sqlite:///{target}",
        SWITCHBOARD_DATA_DIR=str(unwritable_dir),
        SWITCHBOARD_MODE="development",
    )
    done = subprocess.run(
        _core_cli_as_unprivileged("init"),
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=True,
        timeout=60,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("error: ") and expected in lines[0]
    assert "SWITCHBOARD_DB_URL" in lines[0]  # says what to change
    assert not target.exists()
