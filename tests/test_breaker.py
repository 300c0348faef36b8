"""The circuit breaker's arithmetic: failure rate over a sliding window with a minimum
number of calls, the cooldown, and the half-open probes. A hand-moved clock; no sleeps."""

from __future__ import annotations

import pytest

from core.upstream.breaker import BreakerPolicy, Breakers
from tests.gateway_support import FakeClock

D = "openai/gpt-4o@org:1"


def _breakers(**policy: float) -> tuple[Breakers, FakeClock]:
    clock = FakeClock()
    return Breakers(BreakerPolicy(**policy), clock), clock  # type: ignore[arg-type]


def _feed(b: Breakers, pattern: str, deployment: str = D) -> None:
    """'x' a failed call, '.' a good one."""
    for mark in pattern:
        assert b.allow(deployment)
        if mark == "x":
            b.record_failure(deployment)
        else:
            b.record_success(deployment)


def _state(b: Breakers, deployment: str = D) -> str:
    found = [s.state for s in b.states() if s.deployment == deployment]
    return found[0] if found else "closed"


@pytest.mark.parametrize(
    ("calls", "failures", "trips"),
    [
        (9, 9, False),  # under min_calls: never judged, however bad
        (10, 10, True),
        (10, 9, False),  # 90% < 95%
        (20, 19, True),  # exactly 95%
        (20, 18, False),
        (50, 48, True),
        (50, 47, False),
        (50, 38, False),  # a provider answering one call in four keeps its traffic
    ],
)
def test_the_threshold_is_a_rate_over_at_least_min_calls(calls, failures, trips):
    assert BreakerPolicy().trips(calls, failures) is trips


def test_a_partly_failing_deployment_stays_closed_however_long_it_runs():
    b, _ = _breakers()
    _feed(b, "xxx." * 200)  # 75% failures, 800 calls
    [state] = b.states()
    assert state.state == "closed"
    assert (state.calls, state.failures) == (50, 37)  # the window: the last 50 calls


def test_failures_in_a_row_alone_do_not_open_it_but_a_failing_window_does():
    b, _ = _breakers()
    _feed(b, "." * 30 + "x" * 9)
    assert _state(b) == "closed"  # 9 of 39 failed
    failed = 0
    while b.allow(D):
        b.record_failure(D)
        failed += 1
    # It opened when 48 of the last 50 calls had failed (95%): call 78, once 28 of the
    # 30 good calls had left the window. Bounded: never more than 48 failed calls.
    assert (failed, _state(b)) == (78 - 39, "open")


def test_a_fully_failing_deployment_opens_after_min_calls():
    b, _ = _breakers()
    _feed(b, "x" * 9)
    assert _state(b) == "closed"
    _feed(b, "x")
    assert _state(b) == "open" and not b.allow(D)
    [state] = b.states()
    assert (state.calls, state.failures) == (10, 10)  # what opened it, for the page


def test_calls_older_than_the_window_are_forgotten():
    b, clock = _breakers(window_s=60)
    _feed(b, "x" * 9)
    clock.advance(61)
    _feed(b, "x" * 9)  # 18 failures, but never 10 within 60 s
    assert _state(b) == "closed"
    [state] = b.states()
    assert state.calls == 9


def test_open_skips_until_the_cooldown_then_lets_only_a_few_probes_through():
    b, clock = _breakers(cooldown_s=15, probes=3)
    _feed(b, "x" * 10)
    clock.advance(14.9)
    assert not b.allow(D)
    clock.advance(0.2)
    assert _state(b) == "half-open"
    assert [b.allow(D) for _ in range(5)] == [True, True, True, False, False]
    [state] = b.states()
    assert state.probes_in_flight == 3


def test_one_good_probe_closes_it_with_a_fresh_window():
    b, clock = _breakers()
    _feed(b, "x" * 10)
    clock.advance(16)
    assert b.allow(D) and b.allow(D)
    b.record_failure(D)
    assert _state(b) == "half-open"
    b.record_success(D)
    assert _state(b) == "closed" and b.allow(D)
    _feed(b, "x" * 9)  # the old failures are gone: 9 new ones are not enough
    assert _state(b) == "closed"


def test_every_probe_failing_reopens_it_for_another_cooldown():
    b, clock = _breakers()
    _feed(b, "x" * 10)
    clock.advance(16)
    for _ in range(3):
        assert b.allow(D)
        b.record_failure(D)
    assert _state(b) == "open"
    [state] = b.states()
    assert (state.calls, state.failures) == (3, 3)
    clock.advance(14)
    assert not b.allow(D)
    clock.advance(2)
    assert b.allow(D)


def test_a_probe_without_a_verdict_gives_its_slot_back():
    b, clock = _breakers(probes=1)
    _feed(b, "x" * 10)
    clock.advance(16)
    assert b.allow(D) and not b.allow(D)
    b.release(D)  # e.g. the caller pressed Stop, or the request itself was wrong
    assert _state(b) == "half-open"
    assert b.allow(D)
    b.record_success(D)
    assert _state(b) == "closed"


def test_a_late_verdict_from_before_the_opening_changes_nothing():
    b, clock = _breakers()
    _feed(b, "x" * 10)
    b.record_success(D)  # a slow call that began while it was closed
    assert _state(b) == "open"
    clock.advance(16)
    b.record_success(D)  # no probe is out: not a probe's verdict either
    assert _state(b) == "half-open"


def test_deployments_are_judged_apart():
    b, _ = _breakers()
    other = "openai/gpt-4o@own:7"
    _feed(b, "x" * 10)
    assert _state(b) == "open" and b.allow(other)
    assert _state(b, other) == "closed"


def test_good_calls_count_as_much_as_failed_ones():
    b, _ = _breakers()
    _feed(b, "." * 50)
    [state] = b.states()
    assert (state.state, state.calls, state.failures) == ("closed", 50, 0)


@pytest.mark.parametrize(
    "policy",
    [
        {"failure_rate": 0},
        {"failure_rate": 1.5},
        {"min_calls": 0},
        {"min_calls": 200, "window_calls": 100},
        {"probes": 0},
    ],
)
def test_a_policy_that_could_never_work_is_refused(policy):
    with pytest.raises(ValueError):
        BreakerPolicy(**policy)
