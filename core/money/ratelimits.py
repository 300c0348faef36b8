"""Per-user request and token limits per UTC minute, counted in the database.

Limits come from the user's ``RateLimit`` row when there is one (a NULL column there
means unlimited for that user), else from the org defaults the caller passes in
(``SWITCHBOARD_RATE_RPM`` / ``SWITCHBOARD_RATE_TPM``; None = unlimited).

Counting is one conditional UPDATE of the user's row for the current minute, which
succeeds only while both counters stay within the limits; so replicas sharing the
database can never let more through than the limit, and nothing is read-then-written.
The first request of a minute inserts the row with ON CONFLICT DO NOTHING; losing that
race to another replica simply means retrying the UPDATE. Fixed windows are deliberate:
one row per user per minute is cheap, and a burst at a minute boundary is acceptable.
Admission counts the prompt's estimate; once the answer is in, the ledger writer moves
the minute to the tokens really used, prompt and completion (``correct_tokens``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import case, delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Executable

from core.errors import InvalidInput, NotFound, RateLimited
from core.request import Caller
from core.store import audit
from core.store.tables import RateLimit, RateWindow, User

KEEP_WINDOWS: Final = 5  # minutes of history kept; only the current one is ever checked


@dataclass(frozen=True, slots=True)
class Limits:
    requests_per_minute: int | None  # None: unlimited
    tokens_per_minute: int | None

    @property
    def unlimited(self) -> bool:
        return self.requests_per_minute is None and self.tokens_per_minute is None


def minute_of(now: datetime) -> int:
    """The epoch minute (UTC) that ``now`` falls in: the window key."""
    return int(now.timestamp()) // 60


def seconds_to_next_minute(now: datetime) -> int:
    """Whole seconds until the next window opens, rounded up, so at least 1."""
    return 60 - now.astimezone(UTC).second


def _write(session: Session, statement: Executable) -> int:
    return session.connection().execute(statement).rowcount


def effective_limits(
    session: Session, user_id: int, default_rpm: int | None, default_tpm: int | None
) -> Limits:
    row = session.get(RateLimit, user_id)
    if row is None:
        return Limits(default_rpm, default_tpm)
    return Limits(row.requests_per_minute, row.tokens_per_minute)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def check_and_count(
    session_factory: sessionmaker[Session],
    caller: Caller,
    tokens: int,
    now: datetime,
    default_rpm: int | None,
    default_tpm: int | None,
    limits: Limits | None = None,
) -> None:
    """Count one request of about ``tokens`` tokens, or raise RateLimited (counting nothing).

    ``limits`` may be passed by a caller that already knows them (the gateway caches them).
    """
    if tokens < 0:
        raise ValueError("tokens must be non-negative")
    if limits is None:
        with session_factory() as session:
            limits = effective_limits(session, caller.user_id, default_rpm, default_tpm)
    if limits.unlimited:
        return  # no write on the hot path
    rpm, tpm = limits.requests_per_minute, limits.tokens_per_minute
    retry = seconds_to_next_minute(now)
    if tpm is not None and tokens > tpm:
        raise RateLimited(
            f"This request needs about {_plural(tokens, 'token')}, more than your limit of "
            f"{_plural(tpm, 'token')} per minute. Shorten the prompt, or ask an admin to "
            "raise the limit.",
            retry_after_s=retry,
        )
    if rpm is not None and rpm < 1:
        raise RateLimited(
            "Your requests are paused (a limit of 0 per minute). Ask an admin to raise it.",
            retry_after_s=retry,
        )
    window = minute_of(now)
    key = (RateWindow.user_id == caller.user_id, RateWindow.window == window)
    within = [RateWindow.requests + 1 <= rpm] if rpm is not None else []
    if tpm is not None:
        within.append(RateWindow.tokens + tokens <= tpm)
    count = (
        update(RateWindow)
        .where(*key, *within)
        .values(requests=RateWindow.requests + 1, tokens=RateWindow.tokens + tokens)
    )
    with session_factory.begin() as session:
        if _write(session, count):
            return
        values = {"user_id": caller.user_id, "window": window, "requests": 1, "tokens": tokens}
        dialect = session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        # RETURNING tells whether the row was created (INSERT rowcounts are unreliable).
        created = session.execute(
            insert(RateWindow)
            .values(**values)
            .on_conflict_do_nothing()
            .returning(RateWindow.user_id)
        ).first()
        if created is not None:
            # First request of this minute for this user: a cheap moment to drop old windows.
            _write(
                session,
                delete(RateWindow).where(
                    RateWindow.user_id == caller.user_id, RateWindow.window < window - KEEP_WINDOWS
                ),
            )
            return
        if _write(session, count):  # another replica created the row first
            return
        row = session.get(RateWindow, (caller.user_id, window))
        used_requests, used_tokens = (row.requests, row.tokens) if row else (0, 0)
    if rpm is not None and used_requests + 1 > rpm:
        message = f"You have reached {_plural(rpm, 'request')} per minute."
    else:
        message = (
            f"You have used {used_tokens:,} of your {_plural(tpm or 0, 'token')} per "
            f"minute, and this request needs about {tokens:,}."
        )
    raise RateLimited(f"{message} Try again in {retry} s.", retry_after_s=retry)


def correct_tokens(session: Session, user_id: int, at: datetime, delta: int) -> None:
    """Move a counted request's minute from its prompt estimate to the tokens it used.

    Unconditional: the tokens are spent, so a request over the limit now only makes the
    next ones in that minute wait. Never below zero, whatever the estimate was.
    """
    total = RateWindow.tokens + delta
    _write(
        session,
        update(RateWindow)
        .where(RateWindow.user_id == user_id, RateWindow.window == minute_of(at))
        .values(tokens=case((total < 0, 0), else_=total)),
    )


def prune_windows(session: Session, now: datetime) -> int:
    """Delete every user's windows older than :data:`KEEP_WINDOWS` minutes (for a periodic job)."""
    return _write(
        session, delete(RateWindow).where(RateWindow.window < minute_of(now) - KEEP_WINDOWS)
    )


def _check_limit(value: int | None, what: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InvalidInput(
            f"The {what} limit must be a whole number of at least 1, or empty for unlimited."
        )


def set_rate_limit(
    session: Session,
    user_id: int,
    rpm: int | None,
    tpm: int | None,
    actor: str,
    now: datetime,
) -> Limits:
    """Give a user their own limits (None = unlimited), replacing the org default for them."""
    _check_limit(rpm, "requests-per-minute")
    _check_limit(tpm, "tokens-per-minute")
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user with id {user_id}.")
    row = session.get(RateLimit, user_id)
    previous = None if row is None else [row.requests_per_minute, row.tokens_per_minute]
    if row is None:
        session.add(RateLimit(user_id=user_id, requests_per_minute=rpm, tokens_per_minute=tpm))
    else:
        row.requests_per_minute, row.tokens_per_minute = rpm, tpm
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="ratelimit.set",
        target=user.username,
        now=now,
        details={"rpm": rpm, "tpm": tpm, "previous": previous},
    )
    return Limits(rpm, tpm)


def clear_rate_limit(session: Session, user_id: int, actor: str, now: datetime) -> bool:
    """Put a user back on the org default; False if they had no limits of their own."""
    row = session.get(RateLimit, user_id)
    if row is None:
        return False
    user = session.get(User, user_id)
    session.delete(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="ratelimit.clear",
        target=user.username if user else str(user_id),
        now=now,
    )
    return True
