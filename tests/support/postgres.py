"""A real, throwaway PostgreSQL server for tests.

``postgres_server`` (session scope) starts one server per test session from the local
PostgreSQL binaries: a temp cluster, trust auth, fsync off, listening only on 127.0.0.1
at a free port. ``postgres_url`` (function scope) creates a fresh database per test and
drops it afterwards. Import both into a test module to use them::

    from tests.support.postgres import postgres_server, postgres_url  # noqa: F401

Set ``SWITCHBOARD_TEST_PG_URL`` (e.g. ``postgresql://postgres:pw@db:5432/postgres``) to
use an existing server instead; its user must be allowed to CREATE and DROP databases.
Without binaries and without that variable the tests skip, except under ``CI=true``,
where they fail: CI must never silently skip the PostgreSQL tests.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL, make_url

PG_URL_ENV = "SWITCHBOARD_TEST_PG_URL"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
SUPERUSER = "postgres"
_NEEDED = ("initdb", "postgres")

# Read at import: the autouse `isolated_env` fixture strips SWITCHBOARD_* variables before
# each test, and the session fixture may first be requested from inside a test.
_EXTERNAL_URL = os.environ.get(PG_URL_ENV, "").strip()


def find_pg_bin() -> Path | None:
    """The directory holding initdb and postgres, or None if PostgreSQL is not installed."""
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        # Debian's /usr/bin and /usr/local/bin hold symlinks; `postgres` sits next to the target.
        candidates.append(Path(on_path).resolve().parent)

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", str(p))) or (0,)

    for pattern_root, pattern in (
        (Path("/usr/lib/postgresql"), "*/bin"),  # Debian / Ubuntu
        (Path("/usr"), "pgsql-*/bin"),  # RHEL / PGDG
        (Path("/usr/local/pgsql"), "bin"),  # source builds
        (Path("/opt/homebrew/opt"), "postgresql*/bin"),  # macOS
    ):
        if pattern_root.is_dir():
            candidates.extend(sorted(pattern_root.glob(pattern), key=version, reverse=True))
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in _NEEDED):
            return directory
    return None


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the PostgreSQL tests must run in CI)", pytrace=False)
    pytest.skip(reason)


def _admin_connect(url: URL) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        dbname=url.database,
        connect_timeout=5,
        autocommit=True,  # CREATE/DROP DATABASE cannot run inside a transaction
    )


@dataclass(frozen=True)
class PostgresServer:
    """A reachable server; ``admin_url`` points at its maintenance database."""

    admin_url: URL

    @property
    def port(self) -> int:
        return self.admin_url.port or 5432

    def url(self, dbname: str) -> str:
        """A SQLAlchemy URL (psycopg 3 driver) for one database on this server."""
        return self.admin_url.set(database=dbname).render_as_string(hide_password=False)

    def create_database(self) -> str:
        name = f"test_{uuid.uuid4().hex[:16]}"
        with _admin_connect(self.admin_url) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        # FORCE (PostgreSQL 13+) ends connections a test's engine pool may still hold.
        with _admin_connect(self.admin_url) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _scratch_root() -> str | None:
    """A roomy tmpfs if there is one: CREATE DATABASE there is ~50x faster than on disk."""
    shm = Path("/dev/shm")
    try:
        if os.access(shm, os.W_OK | os.X_OK) and shutil.disk_usage(shm).free > 512 * 2**20:
            return str(shm)
    except OSError:
        pass
    return None  # the default temp dir (Docker's /dev/shm is only 64 MB)


def _run_as() -> dict[str, Any]:
    """Popen arguments that drop root: postgres refuses to run as root."""
    if os.geteuid() != 0:
        return {}
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        account = pwd.getpwnam("nobody")
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


class LocalCluster:
    """initdb + postgres in a temp dir; stop() kills the server and deletes the dir."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.base = Path(tempfile.mkdtemp(prefix="switchboard-pg-", dir=_scratch_root()))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._as = _run_as()
        # A minimal environment: no PG* variables from the host can redirect initdb.
        self._env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
        if self._as:
            os.chown(self.base, self._as["user"], self._as["group"])
        atexit.register(self.stop)  # in case pytest dies before the fixture finalizer

    def start(self) -> URL:
        init = subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            cwd=self.base,
            env=self._env,
            capture_output=True,
            text=True,
            timeout=60,
            **self._as,
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stderr[-2000:]}")
        for _attempt in range(3):  # another process may grab the free port first
            self.port = _free_port()
            if self._launch():
                return make_url(f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/postgres")
        raise RuntimeError(f"PostgreSQL did not start; log:\n{self._log_tail()}")

    def _launch(self) -> bool:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(self.bin_dir / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-k",
                    str(self.base),
                    # Durability is pointless for a throwaway cluster and costs seconds.
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                ],
                cwd=self.base,
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
                **self._as,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                psycopg.connect(
                    host="127.0.0.1",
                    port=self.port,
                    user=SUPERUSER,
                    dbname="postgres",
                    connect_timeout=1,
                ).close()
                return True
            except psycopg.OperationalError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"PostgreSQL was not ready within {START_TIMEOUT_S:.0f}s; log:\n{self._log_tail()}"
        )

    def stop_server(self) -> None:
        """Stop the server (fast shutdown) but keep its data, to start again on the same port."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(STOP_TIMEOUT_S)

    def restart_server(self) -> None:
        """Start the stopped server again on the same port, with the same data."""
        if not self._launch():
            raise RuntimeError(f"PostgreSQL did not restart; log:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return "(no log)"

    def pause(self) -> None:
        """Stop the server but keep its data: a database outage. ``resume`` ends it."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # fast shutdown: every client is disconnected
            proc.wait(STOP_TIMEOUT_S)

    def resume(self) -> None:
        """Start the paused server again, on the same port."""
        if not self._launch():
            raise RuntimeError(f"PostgreSQL did not restart; log:\n{self._log_tail()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGQUIT)  # immediate shutdown: nothing here is worth saving
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT_S)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session: $SWITCHBOARD_TEST_PG_URL or a local one."""
    if _EXTERNAL_URL:
        url = make_url(_EXTERNAL_URL)
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        yield PostgresServer(url.set(database=url.database or "postgres"))
        return
    bin_dir = find_pg_bin()
    if bin_dir is None:
        _unavailable(
            "PostgreSQL server binaries not found; install the postgresql package "
            f"(or set {PG_URL_ENV} to an existing server)"
        )
    cluster = LocalCluster(bin_dir)
    try:
        yield PostgresServer(cluster.start())
    finally:
        cluster.stop()


@pytest.fixture
def stoppable_postgres() -> Iterator[tuple[LocalCluster, str]]:
    """A server of this test's own, which it may stop and start: (cluster, URL)."""
    if _EXTERNAL_URL:
        pytest.skip(f"{PG_URL_ENV} names a server this test must not stop")
    bin_dir = find_pg_bin()
    if bin_dir is None:
        _unavailable("PostgreSQL server binaries not found; install the postgresql package")
    cluster = LocalCluster(bin_dir)
    try:
        yield cluster, cluster.start().render_as_string(hide_password=False)
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for one test, as a postgresql+psycopg:// URL."""
    name = postgres_server.create_database()
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)
