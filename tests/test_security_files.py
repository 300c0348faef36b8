"""Issue 20, finding 7: the data folder is created 0700, the SQLite database and its
-wal/-shm files 0600 (whatever the umask), and a wider existing one is warned about."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from core.accounts.secrets import load_cipher
from core.config import load_settings, resolve_cookie_key
from core.store import db


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask: nothing may rely on it to keep files private."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_a_fresh_data_folder_database_wal_and_shm_are_private(
    tmp_path: Path, open_umask: None, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "fresh" / "data"
    database = data / "switchboard.db"
    engine = db.make_engine(f"sqlite:///{database}")
    try:
        db.upgrade_database(engine)
        with engine.begin() as conn:  # a write, so the -wal and -shm files exist
            conn.execute(text("CREATE TABLE probe (x INTEGER)"))
            conn.execute(text("INSERT INTO probe VALUES (1)"))
            assert Path(f"{database}-wal").exists() and Path(f"{database}-shm").exists()
            assert _mode(data) == 0o700
            for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
                assert _mode(path) == 0o600, path
    finally:
        engine.dispose()
    assert "readable by other users" not in caplog.text


def test_generated_key_files_sit_in_a_private_folder(tmp_path: Path, open_umask: None) -> None:
    data = tmp_path / "keys-data"
    settings = load_settings(data_dir=data)
    _, created = resolve_cookie_key(settings)
    load_cipher(settings)
    assert created is not None
    assert _mode(data) == 0o700
    assert {p.name: _mode(p) for p in data.iterdir()} == {p.name: 0o600 for p in data.iterdir()}


def test_a_wider_existing_database_is_warned_about_and_left_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "old"
    data.mkdir(mode=0o700)
    os.chmod(data, 0o755)
    database = data / "switchboard.db"
    database.touch()
    os.chmod(database, 0o644)
    with caplog.at_level(logging.WARNING, logger="switchboard.files"):
        db.make_engine(f"sqlite:///{database}").dispose()
    assert f"chmod 600 {database}" in caplog.text
    assert f"chmod 700 {data}" in caplog.text
    assert _mode(database) == 0o644  # an admin's choice is reported, not overridden
