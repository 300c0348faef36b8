"""TtlCache: expiry, and one shared load when concurrent callers miss the same key."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from core.ttlcache import TtlCache


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_value_is_reused_until_its_ttl_then_reloaded():
    clock = _Clock()
    cache: TtlCache[int] = TtlCache(2.0, clock=clock)
    loads: list[int] = []

    def load() -> int:
        loads.append(1)
        return len(loads)

    assert cache.get_or_load("k", load) == 1
    clock.now += 1.9
    assert cache.get_or_load("k", load) == 1
    clock.now += 0.2
    assert cache.get_or_load("k", load) == 2
    assert cache.peek("k") == (True, 2) and cache.peek("other") == (False, None)


def test_concurrent_misses_share_one_load():
    cache: TtlCache[str] = TtlCache(60.0)
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow_load() -> str:
        calls.append(threading.current_thread().name)
        started.set()
        assert release.wait(5)
        return "routes"

    with ThreadPoolExecutor(16) as pool:
        first = pool.submit(cache.get_or_load, "k", slow_load)
        assert started.wait(5)
        rest = [pool.submit(cache.get_or_load, "k", slow_load) for _ in range(15)]
        release.set()
        values = [first.result(5)] + [f.result(5) for f in rest]
    assert values == ["routes"] * 16
    assert len(calls) == 1


def test_a_failed_load_is_not_cached_and_a_waiting_caller_loads_for_itself():
    cache: TtlCache[str] = TtlCache(60.0)
    started, release = threading.Event(), threading.Event()
    attempts: list[int] = []

    def failing_then_fine() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            started.set()
            assert release.wait(5)
            raise LookupError("database away")
        return "fine"

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(cache.get_or_load, "k", failing_then_fine)
        assert started.wait(5)
        second = pool.submit(cache.get_or_load, "k", failing_then_fine)
        release.set()
        with pytest.raises(LookupError):
            first.result(5)
        assert second.result(5) == "fine"
    assert len(attempts) == 2
    assert cache.peek("k") == (True, "fine")


def test_a_caller_that_may_not_wait_never_blocks_on_a_load_in_flight():
    """The event loop's pass (wait=False) loads on its own, and its load fails at once."""
    cache: TtlCache[str] = TtlCache(60.0)
    started, release = threading.Event(), threading.Event()

    def slow_load() -> str:
        started.set()
        assert release.wait(5)
        return "routes"

    class NeedsDatabase(Exception):
        pass

    def refuse() -> str:
        raise NeedsDatabase

    with ThreadPoolExecutor(1) as pool:
        loading = pool.submit(cache.get_or_load, "k", slow_load)
        assert started.wait(5)
        with pytest.raises(NeedsDatabase):  # returned at once, not after release
            cache.get_or_load("k", refuse, wait=False)
        release.set()
        assert loading.result(5) == "routes"
    assert cache.get_or_load("k", refuse, wait=False) == "routes"
