"""core.money.ratelimits: per-user requests and tokens per minute, counted atomically in the DB."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import InvalidInput, NotFound, RateLimited
from core.money.ratelimits import (
    KEEP_WINDOWS,
    Limits,
    check_and_count,
    clear_rate_limit,
    effective_limits,
    minute_of,
    prune_windows,
    seconds_to_next_minute,
    set_rate_limit,
)
from core.request import Caller
from core.store import audit
from core.store.tables import RateWindow
from tests.conftest import add_user

NOW = datetime(2025, 3, 15, 12, 0, 48, 250_000, tzinfo=UTC)  # 12 s (rounded up) to 12:01
Factory = sessionmaker[Session]


def caller_for(sessions: Factory, username: str) -> Caller:
    info = add_user(sessions, username)
    return Caller(info.id, info.username, info.role)


def windows(sessions: Factory, who: Caller) -> list[tuple[int, int, int]]:
    with sessions() as s:
        rows = s.execute(
            select(RateWindow.window, RateWindow.requests, RateWindow.tokens)
            .where(RateWindow.user_id == who.user_id)
            .order_by(RateWindow.window)
        )
        return [tuple(r) for r in rows]


@pytest.fixture
def alice(sessions: Factory) -> Caller:
    return caller_for(sessions, "alice")


def test_the_request_over_the_limit_is_refused_until_the_next_minute(sessions, alice):
    for _ in range(3):
        check_and_count(sessions, alice, 10, NOW, default_rpm=3, default_tpm=None)
    with pytest.raises(RateLimited) as refused:
        check_and_count(sessions, alice, 10, NOW + timedelta(seconds=5), 3, None)
    assert refused.value.http_status == 429
    assert refused.value.retry_after_s == 7
    assert refused.value.message == "You have reached 3 requests per minute. Try again in 7 s."
    assert windows(sessions, alice) == [(minute_of(NOW), 3, 30)]  # the refusal counted nothing
    next_minute = NOW.replace(minute=1, second=0, microsecond=0)
    check_and_count(sessions, alice, 10, next_minute, 3, None)
    assert windows(sessions, alice)[-1] == (minute_of(NOW) + 1, 1, 10)


def test_retry_after_is_whole_seconds_and_at_least_one():
    assert seconds_to_next_minute(NOW) == 12
    assert seconds_to_next_minute(NOW.replace(second=59, microsecond=999_999)) == 1
    assert seconds_to_next_minute(NOW.replace(second=0, microsecond=0)) == 60


def test_tokens_per_minute(sessions, alice):
    check_and_count(sessions, alice, 600, NOW, None, 1_000)
    with pytest.raises(RateLimited) as refused:
        check_and_count(sessions, alice, 500, NOW, None, 1_000)
    assert refused.value.message == (
        "You have used 600 of your 1,000 tokens per minute, and this request needs about 500. "
        "Try again in 12 s."
    )
    check_and_count(sessions, alice, 400, NOW, None, 1_000)  # exactly fills the minute
    with pytest.raises(RateLimited):
        check_and_count(sessions, alice, 1, NOW, None, 1_000)
    check_and_count(sessions, alice, 1_000, NOW + timedelta(minutes=1), None, 1_000)
    with pytest.raises(RateLimited, match="more than your limit of 1,000 tokens per minute"):
        check_and_count(sessions, alice, 1_001, NOW + timedelta(minutes=5), None, 1_000)


def test_a_users_own_limits_replace_the_org_default(sessions, alice):
    bob = caller_for(sessions, "bob")
    with sessions.begin() as s:
        assert set_rate_limit(s, alice.user_id, 1, None, actor="admin", now=NOW) == Limits(1, None)
        set_rate_limit(s, bob.user_id, None, None, actor="admin", now=NOW)  # unlimited
        assert effective_limits(s, alice.user_id, 100, 100) == Limits(1, None)
        entries = audit.recent(s, action="ratelimit.set")
    assert {(e.target, e.details["rpm"]) for e in entries} == {("alice", 1), ("bob", None)}
    check_and_count(sessions, alice, 10_000, NOW, default_rpm=100, default_tpm=100)
    with pytest.raises(RateLimited, match="1 request per minute"):
        check_and_count(sessions, alice, 1, NOW, 100, 100)
    for _ in range(5):
        check_and_count(sessions, bob, 10_000, NOW, default_rpm=1, default_tpm=100)
    assert windows(sessions, bob) == []  # unlimited: nothing is written on the hot path
    with sessions.begin() as s:
        assert clear_rate_limit(s, alice.user_id, actor="admin", now=NOW) is True
        assert clear_rate_limit(s, alice.user_id, actor="admin", now=NOW) is False
    with pytest.raises(RateLimited, match="used 10,000 of your 100 tokens"):  # same minute
        check_and_count(sessions, alice, 1, NOW, 100, 100)
    check_and_count(sessions, alice, 100, NOW + timedelta(minutes=1), 100, 100)


@pytest.mark.parametrize(("rpm", "tpm"), [(0, None), (None, -5), (True, None), (1.5, None)])
def test_set_rate_limit_rejects_nonsense(sessions, alice, rpm, tpm):
    with sessions.begin() as s, pytest.raises(InvalidInput, match="at least 1"):
        set_rate_limit(s, alice.user_id, rpm, tpm, actor="admin", now=NOW)


def test_set_rate_limit_for_an_unknown_user(sessions):
    with sessions.begin() as s, pytest.raises(NotFound):
        set_rate_limit(s, 999, 5, 5, actor="admin", now=NOW)


def test_old_windows_are_pruned(sessions, alice):
    bob = caller_for(sessions, "bob")
    for minutes in range(8):
        check_and_count(sessions, alice, 1, NOW + timedelta(minutes=minutes), 10, None)
    check_and_count(sessions, bob, 1, NOW, 10, None)
    # Each new minute drops the user's windows older than KEEP_WINDOWS minutes.
    last = minute_of(NOW) + 7
    assert [w for w, _, _ in windows(sessions, alice)] == list(range(last - KEEP_WINDOWS, last + 1))
    with sessions.begin() as s:
        assert prune_windows(s, NOW + timedelta(minutes=7)) == 1  # bob's: idle for 7 minutes
        assert prune_windows(s, NOW + timedelta(minutes=8)) == 1  # alice's oldest
    assert windows(sessions, bob) == []
    assert len(windows(sessions, alice)) == KEEP_WINDOWS


# --- concurrency ---------------------------------------------------------------------------


@pytest.mark.parametrize("engines", [1, 2], ids=["one-engine", "two-replicas"])
def test_exactly_rpm_requests_pass_out_of_many_concurrent(replicas, engines):
    factories = replicas[:engines]
    alice = caller_for(factories[0], "alice")
    rpm, threads, attempts = 25, 16, 4
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def worker(n: int) -> None:
        factory = factories[n % len(factories)]
        start.wait()  # the first request of the minute races to create the window row
        for _ in range(attempts):
            try:
                check_and_count(factory, alice, 7, NOW, rpm, None)
                outcome = "ok"
            except RateLimited:
                outcome = "refused"
            except Exception as exc:
                outcome = f"error: {exc.__class__.__name__}: {exc}"
            with lock:
                outcomes[outcome] += 1

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert outcomes == Counter({"ok": rpm, "refused": threads * attempts - rpm})
    assert windows(factories[0], alice) == [(minute_of(NOW), rpm, rpm * 7)]
    with factories[0]() as s:
        assert s.scalar(select(func.count()).select_from(RateWindow)) == 1
