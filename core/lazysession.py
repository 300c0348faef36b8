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
    """A session opened on first use; with neither factory nor session, use raises."""

    def __init__(self, factory: sessionmaker[Session] | None,
                 session: Session | None = None) -> None:
        self._factory = factory
        self._session = session
        self._owned = False

    @classmethod
    def over(cls, session: Session) -> LazySession:
        return cls(None, session)

    def require(self) -> None:
        if self._factory is None and self._session is None:
            raise NeedsDatabase

    def session(self) -> Session:
        if self._session is None:
            self.require()
            assert self._factory is not None
            self._session = self._factory()
            self._owned = True
        return self._session

    def __enter__(self) -> LazySession:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._owned and self._session is not None:
            self._session.close()
            self._session = None
            self._owned = False
