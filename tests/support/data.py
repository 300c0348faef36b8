"""Data-layer helpers and fixtures shared by the backend tests (SQLite, PostgreSQL, libSQL)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.accounts import auth
from core.store import db
from core.store.tables import AuditEntry, Team, User

ROUNDS = 4  # cheap bcrypt: these tests are about storage, not hashing cost
PASSWORD = "correct-horse-battery"
T0 = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)

Factory = sessionmaker[Session]


def create_user(
    sessions: Factory, username: str, *, now: datetime = T0, **kwargs: Any
) -> auth.UserInfo:
    kwargs.setdefault("role", "member")
    kwargs.setdefault("password", PASSWORD)
    with sessions.begin() as s:
        return auth.create_user(
            s, username=username, actor="test", now=now, rounds=ROUNDS, **kwargs
        )


def row_counts(sessions: Factory) -> tuple[int, int, int]:
    """(users, teams, audit entries): what a failed write must leave unchanged."""
    with sessions() as s:
        return (
            s.scalar(select(func.count(User.id))) or 0,
            s.scalar(select(func.count(Team.id))) or 0,
            s.scalar(select(func.count(AuditEntry.id))) or 0,
        )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def replicas(request: pytest.FixtureRequest, isolated_env: object) -> Iterator[list[Factory]]:
    """Two engines on one database (SQLite WAL file or PostgreSQL), as two replicas would."""
    if request.param == "sqlite":
        url = os.environ["SWITCHBOARD_DB_URL"]
    else:
        url = request.getfixturevalue("postgres_url")
    engines = [db.make_engine(url, pool_size=16, max_overflow=4) for _ in range(2)]
    db.upgrade_database(engines[0])
    yield [db.make_session_factory(e) for e in engines]
    for engine in engines:
        engine.dispose()
