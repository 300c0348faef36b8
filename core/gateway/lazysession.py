"""A database session opened only when a cache misses, or refused outright.

The gateway admits a request first on the event loop with no session factory at all:
when routes, keys and limits are all cached (the usual case) that costs no thread hop.
Any read or write there raises NeedsDatabase before a side effect, and the caller
redoes the whole step on a worker thread with a real factory.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker


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
