"""Engine, session factory and schema upgrades.

One engine per process (the UI caches it with ``st.cache_resource``; the CLI and
API build one at start). Sessions live for one action: ``with factory.begin() as s:``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from core import filemodes
from core.errors import ConfigError, DatabaseUnavailable

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
URL_EXAMPLES = (
    "sqlite:///data/switchboard.db, postgresql+psycopg://user:password@host:5432/switchboard "
    "or sqlite+libsql://your-db.turso.io?secure=true"
)
SQLITE_BUSY_TIMEOUT_MS = 5000
# PostgreSQL: how long to wait for a connection, and for one statement, before the
# request gets 503 database_unavailable. Both are settings (SWITCHBOARD_DB_CONNECT_TIMEOUT_S,
# SWITCHBOARD_DB_STATEMENT_TIMEOUT_S); these are their defaults.
CONNECT_TIMEOUT_S = 5.0
STATEMENT_TIMEOUT_S = 10.0
RETRY_AFTER_S = 5


def parse_db_url(raw: str) -> URL:
    """Parse and normalise a database URL, or explain what a valid one looks like."""
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise ConfigError(
            f"SWITCHBOARD_DB_URL is malformed. Use a URL such as {URL_EXAMPLES}."
        ) from None
    if url.drivername in ("postgresql", "postgres"):
        # psycopg 3 is the driver we ship; the bare scheme would ask for psycopg2.
        url = url.set(drivername="postgresql+psycopg")
    if not url.drivername.startswith(("sqlite", "postgresql")):
        raise ConfigError(
            f"SWITCHBOARD_DB_URL uses '{url.drivername}', which Switchboard does not support. "
            f"Use SQLite, PostgreSQL or libSQL, for example {URL_EXAMPLES}."
        )
    return url


_SECRET_QUERY_KEYS = frozenset({"password", "authtoken", "auth_token", "token", "sslpassword"})


def describe_url(url: URL) -> str:
    """The URL with its password (and secret query values such as Turso's authToken) hidden."""
    hidden = {k: "redacted" for k in url.query if k.lower() in _SECRET_QUERY_KEYS}
    return url.update_query_dict(hidden).render_as_string(hide_password=True)


def _prepare_sqlite_file(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or url.host:
        return
    path = Path(database).expanduser().resolve()
    folder = path.parent
    try:
        filemodes.private_folder(folder)
        if os.access(folder, os.W_OK):
            filemodes.private_file(path)
    except OSError:
        raise DatabaseUnavailable(
            f"Cannot create the data folder {folder}. Create it, or point SWITCHBOARD_DB_URL "
            "at a writable location."
        ) from None
    if not os.access(folder, os.W_OK) or (
        Path(database).exists() and not os.access(database, os.W_OK)
    ):
        raise DatabaseUnavailable(
            f"The data folder {folder} is read-only, so the database cannot be written. "
            "Make it writable, or set SWITCHBOARD_DB_URL to a writable location."
        )
    filemodes.warn_if_open(path)


def _install_sqlite_pragmas(engine: Engine, wal: bool, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        # 64 MB page cache (the default is 2 MB): analytics rescans the rollups per view.
        cur.execute("PRAGMA cache_size=-65536")
        if wal:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()


def _map_libsql_errors(engine: Engine) -> None:
    """Give libSQL's bare ValueErrors the DB-API types the rest of the code expects."""

    @event.listens_for(engine, "handle_error")
    def _translate(ctx: Any) -> Any:
        err = ctx.original_exception
        if type(err) is not ValueError:
            return None
        cls = IntegrityError if "constraint failed" in str(err) else OperationalError
        return cls(ctx.statement, ctx.parameters, err)


def make_engine(
    raw_url: str,
    *,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    statement_timeout_s: float = STATEMENT_TIMEOUT_S,
    **kwargs: Any,
) -> Engine:
    """Build the process's engine with the pragmas, pool and timeouts each backend needs.

    PostgreSQL gets ``connect_timeout`` and ``statement_timeout`` (and waiting for a pooled
    connection is bounded the same way), so a database that hangs fails a request with
    503 rather than holding it; SQLite waits for a lock at most its ``busy_timeout``
    (5 s, or the statement timeout when that is shorter).
    """
    url = parse_db_url(raw_url)
    is_libsql = url.drivername == "sqlite+libsql"
    if is_libsql:
        try:
            import sqlalchemy_libsql  # noqa: F401  (registers the dialect)
        except ImportError:
            raise ConfigError(
                "SWITCHBOARD_DB_URL uses libSQL, but the optional dialect is not installed. "
                "Install it with: pip install 'switchboard[libsql]'."
            ) from None
    if url.drivername.startswith("sqlite"):
        _prepare_sqlite_file(url)
    else:
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("pool_timeout", connect_timeout_s)
        if url.drivername.startswith("postgresql"):
            connect_args = dict(kwargs.pop("connect_args", {}))
            connect_args.setdefault("connect_timeout", max(1, round(connect_timeout_s)))
            statement_ms = max(1, int(statement_timeout_s * 1000))
            connect_args.setdefault("options", f"-c statement_timeout={statement_ms}")
            kwargs["connect_args"] = connect_args
    try:
        engine = create_engine(url, **kwargs)
    except NoSuchModuleError:
        raise ConfigError(
            f"No database driver for '{url.drivername}'. Use one of: {URL_EXAMPLES}."
        ) from None
    except (ArgumentError, ImportError) as exc:
        raise ConfigError(
            f"SWITCHBOARD_DB_URL could not be used ({exc.__class__.__name__}). "
            f"Use a URL such as {URL_EXAMPLES}."
        ) from None
    if is_libsql:
        _map_libsql_errors(engine)
    if url.drivername.startswith("sqlite"):
        file_backed = url.database not in (None, "", ":memory:")
        # A lock held elsewhere is SQLite's way to hang: wait for it no longer than a
        # statement may take (and never more than the usual 5 s).
        busy_ms = min(SQLITE_BUSY_TIMEOUT_MS, max(1, int(statement_timeout_s * 1000)))
        _install_sqlite_pragmas(engine, wal=file_backed and not is_libsql, busy_timeout_ms=busy_ms)
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


# The errors that mean the database is away (down, hung, locked, full), not a bad statement.
UNAVAILABLE: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    DisconnectionError,
    PoolTimeout,
)


def is_unavailable(exc: BaseException) -> bool:
    """Is this the database being away (down, hung, locked, full), not a bad statement?"""
    return isinstance(exc, UNAVAILABLE)


def unavailable(exc: BaseException | None = None) -> DatabaseUnavailable:
    """The error a caller gets while the database is away; names no host or credential."""
    why = f" ({type(exc).__name__})" if exc is not None else ""
    return DatabaseUnavailable(
        f"Switchboard's database is not answering right now{why}, so this cannot be "
        f"checked. Retry in {RETRY_AFTER_S} seconds; an admin can see the state at /health.",
        retry_after_s=RETRY_AFTER_S,
    )


def check_connection(engine: Engine) -> None:
    """Raise DatabaseUnavailable with a clear message when the database cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        raise DatabaseUnavailable(_explain_operational(engine, exc)) from None
    except ValueError as exc:
        # libsql_experimental raises bare ValueError for every failure, even at connect.
        if engine.dialect.driver != "libsql":
            raise
        raise DatabaseUnavailable(_explain(engine, str(exc).splitlines()[0])) from None


def _explain_operational(engine: Engine, exc: OperationalError) -> str:
    detail = str(exc.orig).splitlines()[0] if exc.orig else exc.__class__.__name__
    return _explain(engine, detail)


def _explain(engine: Engine, detail: str) -> str:
    where = describe_url(engine.url)
    if "readonly" in detail.replace("-", "").replace(" ", "").lower():
        return (
            f"The database {where} is read-only. Make its folder writable, "
            "or set SWITCHBOARD_DB_URL to a writable location."
        )
    return (
        f"Cannot reach the database {where}: {detail}. Check that the server is running "
        "and that SWITCHBOARD_DB_URL is right."
    )


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade_database(engine: Engine) -> str:
    """Create or upgrade the schema to the newest revision (idempotent). Returns it."""
    from alembic import command

    check_connection(engine)
    try:
        command.upgrade(_alembic_config(engine), "head")
    except OperationalError as exc:
        raise DatabaseUnavailable(_explain_operational(engine, exc)) from None
    except ValueError as exc:
        if engine.dialect.driver != "libsql":
            raise
        raise DatabaseUnavailable(_explain(engine, str(exc).splitlines()[0])) from None
    except SQLAlchemyError as exc:
        raise DatabaseUnavailable(
            f"Upgrading the database {describe_url(engine.url)} failed "
            f"({exc.__class__.__name__}); nothing was changed by the failed step."
        ) from None
    return current_revision(engine) or "base"


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head
