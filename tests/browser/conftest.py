"""Browser fixtures: the real app under `streamlit run`, driven by Debian's headless Chromium.

Two ways to get a running app, both on a throwaway data folder and SQLite file:

* ``start_app`` (per test): a factory that starts `streamlit run app.py` with the
  SWITCHBOARD_* values the autouse ``isolated_env`` fixture (tests/conftest.py) put in
  os.environ. Seed users first with ``cli_add_user``.
* ``shared_app`` (per module): one server for a whole test module, seeded through the
  CLI with the module's ``SEED_USERS``. Starting
  Streamlit and importing litellm costs several seconds, so tests that only need
  "a signed-out browser against a known set of users" share it.

Playwright never downloads a browser here: it launches /usr/bin/chromium (installed
by .ci/install-system-deps). Without it the tests skip, or fail when CI=true.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.server import wait_for_streamlit

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium keeps dialling out, which floods a closed network.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_DEADLINE_S = 60.0
UI_TIMEOUT_MS = 30_000
# A server's first run imports litellm and opens the database: on a busy machine that
# alone can pass UI_TIMEOUT_MS, so the first screen after start gets longer.
FIRST_RUN_MS = 120_000


# --- the app as a subprocess -------------------------------------------------------


def _app_env(base: Mapping[str, str]) -> dict[str, str]:
    env = dict(base)
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _isolated_values(data: Path) -> dict[str, str]:
    """The SWITCHBOARD_* values isolated_env sets, for a folder outside any one test."""
    return {
        "SWITCHBOARD_DATA_DIR": str(data),
        "SWITCHBOARD_DB_URL": f"sqlite:///{data / 'switchboard.db'}",
        "SWITCHBOARD_MODE": "development",
    }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _add_user(
    env: Mapping[str, str], username: str, password: str, *, role: str, name: str | None = None
) -> None:
    """`python -m core user add ...` with the password on stdin, as an operator would."""
    cmd = [sys.executable, "-m", "core", "user", "add", username, "--role", role]
    if name:
        cmd += ["--name", name]
    done = subprocess.run(
        cmd,
        cwd=ROOT,
        env=_app_env(env),
        input=f"{password}\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, (
        f"`{' '.join(cmd)}` exited {done.returncode}\n"
        f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    )


def _tail(log_path: Path) -> str:
    try:
        return log_path.read_text(encoding="utf-8", errors="replace")[-8000:]
    except OSError:
        return "(no output captured)"


def _launch(env: Mapping[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start `streamlit run app.py` on a free port and wait for /_stcore/health."""
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.headless=true",
        f"--server.port={port}",
        "--server.address=127.0.0.1",
        "--browser.gatherUsageStats=false",
        "--server.fileWatcherType=none",
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=_app_env(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    failure = wait_for_streamlit(proc, base, STARTUP_DEADLINE_S)
    if failure is None:
        return proc, base
    _stop(proc)
    pytest.fail(f"streamlit {failure}.\n--- server output ---\n{_tail(log_path)}", pytrace=False)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# --- the browser -------------------------------------------------------------------


def _new_context(browser: Browser) -> BrowserContext:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(UI_TIMEOUT_MS)
    context.set_default_navigation_timeout(UI_TIMEOUT_MS)
    return context


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, launched once per module.

    Not per session: Playwright's sync API keeps an event loop marked as running in
    this thread while it is open, which would break every asyncio test after it.
    """
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing; install it with .ci/install-system-deps"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies, so signed out) and page, with bounded waits."""
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT_MS)
    context = _new_context(browser)
    try:
        yield context.new_page()
    finally:
        context.close()


# --- the app -----------------------------------------------------------------------


@pytest.fixture
def cli_add_user(isolated_env: Path) -> Callable[..., None]:
    """``cli_add_user(username, password, role=..., name=...)`` into this test's database."""

    def add(username: str, password: str, *, role: str, name: str | None = None) -> None:
        _add_user(os.environ, username, password, role=role, name=name)

    return add


@pytest.fixture
def start_app(isolated_env: Path, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """``start_app()`` starts `streamlit run app.py` on this test's database; returns the URL.

    A factory rather than a plain fixture so a test can seed users with the CLI first.
    The server is stopped when the test ends.
    """
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> str:
        proc, base = _launch(os.environ, tmp_path / f"streamlit-{len(procs)}.log")
        procs.append(proc)
        return base

    yield start
    for proc in procs:
        _stop(proc)


@pytest.fixture(scope="module")
def shared_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, browser: Browser
) -> Iterator[str]:
    """One server per module, seeded with the module's ``SEED_USERS``.

    ``SEED_USERS`` is a sequence of (username, password, role, display name). Users are
    created through the CLI before the server starts. Yields the base URL.
    """
    root = tmp_path_factory.mktemp("shared-app")
    data = root / "data"
    data.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env.update(_isolated_values(data))
    for username, password, role, name in getattr(request.module, "SEED_USERS", ()):
        _add_user(env, username, password, role=role, name=name)
    log_path = root / "streamlit.log"
    proc, base = _launch(env, log_path)
    try:
        yield base
    finally:
        _stop(proc)


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
