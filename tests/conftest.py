"""Shared fixtures: every test gets its own data folder and SQLite file, never the real ones."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

from core.accounts import auth
from core.accounts.auth import UserInfo
from core.clock import utc_now
from core.store import db

# One PostgreSQL server and the provider fakes, shared by every test module.
pytest_plugins = [
    "tests.support.postgres",
    "tests.support.data",
    "tests.fakes.fixtures",
    "tests.gateway_support",
    "tests.support.pages",
]

TEST_ROUNDS = 4  # bcrypt cost for tests only; production uses auth.BCRYPT_ROUNDS
PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)  # as Switchboard creates it; a wider one is warned about
    for name in list(os.environ):
        if name.startswith("SWITCHBOARD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SWITCHBOARD_DATA_DIR", str(data))
    monkeypatch.setenv("SWITCHBOARD_DB_URL", f"sqlite:///{data / 'switchboard.db'}")
    monkeypatch.setenv("SWITCHBOARD_MODE", "development")
    return data


@pytest.fixture(autouse=True)
def fresh_page_caches() -> Iterator[None]:
    """st.cache_data is process-wide and keyed by arguments, not by database: a page's
    cached query from an earlier test's database must not answer for this one."""
    import streamlit as st

    st.cache_data.clear()
    yield


@pytest.fixture
def engine(isolated_env: Path) -> Iterator[Engine]:
    eng = db.make_engine(os.environ["SWITCHBOARD_DB_URL"])
    db.upgrade_database(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return db.make_session_factory(engine)


def add_user(
    sessions: sessionmaker[Session],
    username: str,
    role: str = "member",
    team: str | None = None,
    password: str = PASSWORD,
) -> UserInfo:
    with sessions.begin() as s:
        return auth.create_user(
            s,
            username=username,
            password=password,
            role=role,
            team=team,
            actor="test",
            now=utc_now(),
            rounds=TEST_ROUNDS,
        )
