"""Throttling wrong gateway tokens per client address, across replicas.

Every wrong token already costs a database read (the token lookup). Each replica keeps,
in memory, how many wrong tokens each address sent in the current UTC minute; once
that reaches the limit, further unknown tokens from the address get 429 with
``Retry-After`` and no database hit at all. Replicas share the count through one
row per address and minute, written only on a failure (never on the success path):
the write returns the total over every replica, which the replica then adopts. So a
client spreading its guesses over R replicas gets at most the limit plus R - 1 tries
a minute before every replica refuses it.

A token that signed in successfully lately is never throttled: valid clients behind
the same address (a NAT, an office) keep working while a broken or hostile one waits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from core.errors import RateLimited
from core.money.ratelimits import minute_of, seconds_to_next_minute
from core.store.tables import TokenFailureWindow
from core.ttlcache import TtlCache

GOOD_TOKEN_TTL_S = 15 * 60.0  # how long a token that worked bypasses its address's throttle
MAX_ADDRESSES = 10_000  # bound on the in-memory counts (cleared when full)


def record_failure(session: Session, address: str, window: int) -> int:
    """Count one wrong token for ``address`` in ``window``; the total over all replicas."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(TokenFailureWindow).values(address=address, window=window, failures=1)
    total = session.scalar(
        statement.on_conflict_do_update(
            index_elements=["address", "window"],
            set_={"failures": TokenFailureWindow.failures + 1},
        ).returning(TokenFailureWindow.failures)
    )
    if total == 1:  # this address's first failure this minute: drop its older windows
        session.execute(
            delete(TokenFailureWindow).where(
                TokenFailureWindow.address == address, TokenFailureWindow.window < window
            )
        )
    return int(total or 0)


class TokenThrottle:
    """One process's view of wrong tokens per address and minute (thread-safe)."""

    def __init__(
        self,
        limit: int,
        *,
        good_ttl_s: float = GOOD_TOKEN_TTL_S,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.limit = limit
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self._good: TtlCache[bool] = (
            TtlCache(good_ttl_s, clock=monotonic) if monotonic else TtlCache(good_ttl_s)
        )

    def check(self, address: str | None, token_hash: str, now: datetime) -> None:
        """RateLimited, without touching the database, if this address is over the limit."""
        if address is None or self.limit <= 0 or self._good.peek(token_hash)[0]:
            return
        with self._lock:
            failures = self._counts.get((address, minute_of(now)), 0)
        if failures >= self.limit:
            retry = seconds_to_next_minute(now)
            raise RateLimited(
                f"Too many wrong gateway tokens from your address ({failures} this minute). "
                f"Check the token you send; try again in {retry} s.",
                retry_after_s=retry,
            )

    def failed(self, sessions: sessionmaker[Session], address: str | None, now: datetime) -> None:
        """Count a wrong token here and in the shared row (one small write, failures only)."""
        if address is None or self.limit <= 0:
            return
        window = minute_of(now)
        with sessions.begin() as session:
            total = record_failure(session, address[:64], window)
        with self._lock:
            if len(self._counts) >= MAX_ADDRESSES:
                self._counts = {k: v for k, v in self._counts.items() if k[1] == window}
                if len(self._counts) >= MAX_ADDRESSES:
                    self._counts.clear()
            key = (address, window)
            self._counts[key] = max(self._counts.get(key, 0) + 1, total)

    def succeeded(self, token_hash: str) -> None:
        self._good.put(token_hash, True)
