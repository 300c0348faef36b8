"""The README's Quick start, done literally: a fresh clone, `make run`, a browser.

A first-time user has no venv, no keys and no database. `make run` must build the venv
from the runtime lock alone, generate its keys (development mode), create the database
and serve the first-admin form, not "Switchboard cannot start". The clone's own `data/`
folder is the data folder, as it is for the user; the clone lives in a temporary folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import ARTIFACTS, ROOT, _free_port, _new_context, _tail
from tests.support.server import wait_for_streamlit

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.browser

# Building a venv from the lock is pip work, slow on a busy machine; wait on the process.
INSTALL_DEADLINE_S = 900.0
DEV_TOOLS = ("pytest", "playwright", "mypy", "ruff")


def _first_user_env() -> dict[str, str]:
    """The environment of someone who has only cloned: none of this suite's settings."""
    dropped = ("SWITCHBOARD_", "VIRTUAL_ENV", "PYTHONPATH", "MAKE", "MFLAGS", "PYTEST")
    return {k: v for k, v in os.environ.items() if not k.startswith(dropped)}


@pytest.fixture(scope="module")
def quick_start(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, Path]]:
    """A fresh clone running `make run` on a free port: (clone, base URL, output log)."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout, so there is nothing to clone")
    clone = tmp_path_factory.mktemp("quick-start") / "switchboard"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    port = _free_port()
    log = clone.parent / "make-run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["make", "run", f"PORT={port}"],
            cwd=clone,
            env=_first_user_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # make, pip and streamlit end together
        )
    base = f"http://127.0.0.1:{port}"
    try:
        failure = wait_for_streamlit(proc, base, INSTALL_DEADLINE_S)
        if failure is not None:
            pytest.fail(f"`make run` {failure}:\n{_tail(log)}", pytrace=False)
        yield clone, base, log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.mark.timeout(int(INSTALL_DEADLINE_S) + 300)
def test_make_run_on_a_fresh_clone_shows_the_first_admin_form(
    quick_start: tuple[Path, str, Path], browser: Browser
) -> None:
    from playwright.sync_api import expect

    clone, base, log = quick_start
    context = _new_context(browser)
    try:
        page = context.new_page()
        page.goto(base)
        expect(page.get_by_text("Create the first admin account")).to_be_visible()
        # The form's own fields, not a "cannot start" page with a sidebar of file names.
        expect(page.get_by_label("Username")).to_be_visible()
        expect(page.get_by_text("cannot start")).to_have_count(0)
        expect(page.locator('[data-testid="stSidebarNav"]')).to_have_count(0)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "quick_start_first_admin.png"))
    finally:
        context.close()
    # Development mode made both keys in the clone's data folder, owner-only, and said so.
    for name in ("cookie_key", "secret_key"):
        key = clone / "data" / name
        assert key.exists(), f"make run did not generate data/{name}"
        assert key.stat().st_mode & 0o777 == 0o600
    output = log.read_text(errors="replace")
    assert "generated a sign-in cookie key" in output
    assert "Generated a master encryption key" in output


@pytest.mark.timeout(int(INSTALL_DEADLINE_S) + 300)
def test_make_run_installs_only_what_running_needs(quick_start: tuple[Path, str, Path]) -> None:
    clone, _, _ = quick_start
    listed = subprocess.run(
        [str(clone / ".venv" / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.lower()
    installed = {line.split("==")[0] for line in listed.splitlines()}
    assert "streamlit" in installed and "litellm" in installed
    assert [tool for tool in DEV_TOOLS if tool in installed] == []
