"""A database session opened only when a cache misses, or refused outright.

The gateway admits a request first on the event loop with no session factory at all:
when routes, keys and limits are all cached (the usual case) that costs no thread hop.
Any read or write there raises NeedsDatabase before a side effect, and the caller
redoes the whole step on a worker thread with a real factory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from core.store import db

T = TypeVar("T")


class NeedsDatabase(Exception):
    """A step meant to run without the database needed it; redo it on a worker thread."""


class LazySession:
    """A session opened on first use; with no factory, using one raises NeedsDatabase."""

    def __init__(self, factory: sessionmaker[Session] | None) -> None:
        self._factory = factory
        self._session: Session | None = None

    @property
    def may_wait(self) -> bool:
        """False on the event loop (no factory), where waiting for another thread would stall."""
        return self._factory is not None

    def require(self) -> None:
        if self._factory is None:
            raise NeedsDatabase

    def session(self) -> Session:
        if self._session is None:
            if self._factory is None:
                raise NeedsDatabase
            self._session = self._factory()
        return self._session

    def __enter__(self) -> LazySession:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


async def in_thread(fn: Callable[..., T], *args: Any, timeout_s: float) -> T:
    """Run a database step on a worker thread, or raise DatabaseUnavailable.

    A database that is down, locked or full fails fast; one that hangs (stopped, lost
    on the network) is given up on after ``timeout_s``, so a request is never held longer
    than that (the thread itself runs on; a step with a side effect worth undoing, such
    as a budget hold, is shielded and undone by its caller).
    """
    try:
        return await asyncio.wait_for(asyncio.to_thread(fn, *args), timeout_s)
    except TimeoutError:
        raise db.unavailable() from None
    except Exception as exc:
        if db.is_unavailable(exc):
            raise db.unavailable(exc) from None
        raise
