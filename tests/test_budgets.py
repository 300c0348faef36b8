"""core.money.budgets, core.money.reservations, `switchboard budget`: never overspend, real DB.

The concurrency tests run on SQLite (a WAL file) and on PostgreSQL (tests/support/postgres:
a throwaway local server, or $SWITCHBOARD_TEST_PG_URL), with one engine or two engines
standing in for two replicas.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import BudgetExceeded, InvalidInput, NotFound
from core.money.budgets import estimate_remaining, get_budget, list_budgets, set_budget, usd
from core.money.orphans import CHARGED_GRACE, expire_reservations
from core.money.reservations import (
    release,
    reserve,
    settle,
    settle_in,
)
from core.request import Caller
from core.store import audit
from core.store.tables import Alert, Budget, RequestRow, Reservation, User
from tests.conftest import add_user
from tests.support.cli import run_cli

NOW = datetime(2025, 3, 15, 12, 0, tzinfo=UTC)
Factory = sessionmaker[Session]


def caller_for(sessions: Factory, username: str, team: str | None = None) -> Caller:
    info = add_user(sessions, username, team=team)
    with sessions() as s:
        team_id = s.scalar(select(User.team_id).where(User.id == info.id))
    return Caller(info.id, info.username, info.role, team_id)


def budget(sessions: Factory, scope: str, key: str, limit: int, hard: bool = True) -> None:
    with sessions.begin() as s:
        set_budget(s, scope, key, limit, hard, "admin", NOW)


def row(sessions: Factory, scope: str, key: str) -> Budget:
    with sessions() as s:
        found = s.scalar(select(Budget).where(Budget.scope == scope, Budget.scope_key == key))
        assert found is not None
        return found


def alerts(sessions: Factory) -> list[tuple[str, str, str]]:
    with sessions() as s:
        return sorted(s.execute(select(Alert.kind, Alert.subject, Alert.period)).tuples())


def spend(sessions: Factory, who: Caller, micros: int, at: datetime = NOW, rid: str = "x") -> None:
    handle = reserve(sessions, request_id=rid, caller=who, amounts={"openai": micros}, now=at)
    settle(sessions, handle, {"openai": micros}, at)


@pytest.fixture
def alice(sessions: Factory) -> Caller:
    return caller_for(sessions, "alice", team="Ops")


def test_set_get_and_list_budgets(sessions, alice):
    budget(sessions, "user", str(alice.user_id), 5_000_000)
    budget(sessions, "team", str(alice.team_id), 100_500_000, hard=False)
    budget(sessions, "provider", "openai", 1_000_000_000)
    spend(sessions, alice, 1_250_000)
    with sessions.begin() as s:  # raising a limit keeps the spend so far
        changed = set_budget(s, "user", str(alice.user_id), 7_000_000, True, "admin", NOW)
        infos = list_budgets(s, NOW)
        entries = audit.recent(s, action="budget.set")
    assert (changed.limit_micros, changed.spent_micros) == (7_000_000, 1_250_000)
    assert [
        (b.label, b.limit_micros, b.spent_micros, b.hard, b.period, b.resets_on) for b in infos
    ] == [
        ("user alice", 7_000_000, 1_250_000, True, "2025-03", date(2025, 4, 1)),
        ("team Ops", 100_500_000, 1_250_000, False, "2025-03", date(2025, 4, 1)),
        ("provider openai", 1_000_000_000, 1_250_000, True, "2025-03", date(2025, 4, 1)),
    ]
    assert infos[0].remaining_micros == 5_750_000
    assert entries[0].details["previous"] == {"limit_micros": 5_000_000, "hard": True}
    with sessions() as s:
        assert get_budget(s, "provider", "anthropic") is None
        with pytest.raises(InvalidInput, match="zero or a positive"):
            set_budget(s, "user", str(alice.user_id), -1, True, "admin", NOW)
        with pytest.raises(NotFound):
            set_budget(s, "user", "999", 1, True, "admin", NOW)
        with pytest.raises(InvalidInput, match="scope"):
            set_budget(s, "org", "0", 1, True, "admin", NOW)
    assert usd(5_000_000) == "$5.00" and usd(1_250_500_000) == "$1,250.50"
    assert usd(1_234) == "$0.0012" and usd(7_312) == "$0.0073"  # two digits under a cent
    assert usd(9_999) == "$0.01" and usd(-500_000) == "-$0.50" and usd(0) == "$0.00"


def test_hard_budget_refuses_with_a_message_a_person_can_act_on(sessions, alice):
    budget(sessions, "user", str(alice.user_id), 5_000_000)
    spend(sessions, alice, 4_980_000)
    held = reserve(sessions, request_id="a", caller=alice, amounts={"openai": 10_000}, now=NOW)
    with pytest.raises(BudgetExceeded) as refused:
        reserve(sessions, request_id="b", caller=alice, amounts={"openai": 30_000}, now=NOW)
    assert refused.value.http_status == 402
    message = refused.value.message
    for fragment in (
        "up to $0.03",
        "your monthly budget",
        "$5.00",
        "$4.98 is spent",
        "$0.01 is held",
        "resets on 2025-04-01",
        "Ask an admin to raise it",
    ):
        assert fragment in message, (fragment, message)
    assert row(sessions, "user", str(alice.user_id)).reserved_micros == 10_000  # only "a"
    # Exactly filling the budget is allowed.
    reserve(sessions, request_id="c", caller=alice, amounts={"openai": 10_000}, now=NOW)
    release(sessions, held, NOW)


def test_a_refusal_by_one_budget_holds_nothing_anywhere(sessions, alice):
    budget(sessions, "user", str(alice.user_id), 10_000_000)
    budget(sessions, "team", str(alice.team_id), 10_000_000)
    budget(sessions, "provider", "anthropic", 1_000)
    with pytest.raises(BudgetExceeded, match="the anthropic budget"):
        reserve(
            sessions,
            request_id="r",
            caller=alice,
            amounts={"openai": 500, "anthropic": 2_000},
            now=NOW,
        )
    with sessions() as s:
        assert s.scalar(select(func.sum(Budget.reserved_micros))) == 0
        assert s.scalar(select(func.count(Reservation.id))) == 0


def test_team_budget_is_named_in_the_refusal(sessions, alice):
    budget(sessions, "team", str(alice.team_id), 100)
    with pytest.raises(BudgetExceeded, match="team Ops's monthly budget"):
        reserve(sessions, request_id="r", caller=alice, amounts={"openai": 101}, now=NOW)


def test_user_and_team_hold_the_dearest_candidate_providers_their_own(sessions, alice):
    budget(sessions, "user", str(alice.user_id), 10_000)
    budget(sessions, "team", str(alice.team_id), 10_000)
    budget(sessions, "provider", "openai", 10_000)
    budget(sessions, "provider", "anthropic", 10_000)
    handle = reserve(
        sessions, request_id="r", caller=alice, amounts={"openai": 100, "anthropic": 300}, now=NOW
    )
    held = {(h.scope, h.scope_key): h.amount_micros for h in handle.holds}
    assert held == {
        ("user", str(alice.user_id)): 300,
        ("team", str(alice.team_id)): 300,
        ("provider", "openai"): 100,
        ("provider", "anthropic"): 300,
    }
    settle(sessions, handle, {"openai": 40, "anthropic": 250}, NOW)  # a fallback happened
    spent = {
        (b.scope, b.scope_key): (b.spent_micros, b.reserved_micros)
        for b in [row(sessions, *k) for k in held]
    }
    assert spent == {
        ("user", str(alice.user_id)): (290, 0),
        ("team", str(alice.team_id)): (290, 0),
        ("provider", "openai"): (40, 0),
        ("provider", "anthropic"): (250, 0),
    }


def test_no_budget_means_nothing_is_held(sessions, alice):
    handle = reserve(sessions, request_id="r", caller=alice, amounts={"openai": 5}, now=NOW)
    assert handle.holds == ()
    settle(sessions, handle, {"openai": 5}, NOW)  # harmless
    with sessions() as s:
        assert estimate_remaining(s, alice, NOW) is None


def test_soft_budget_allows_overspend_but_alerts_at_80_and_100_percent_once(sessions, alice):
    budget(sessions, "user", str(alice.user_id), 1_000_000, hard=False)
    subject = f"user:{alice.user_id}"
    spend(sessions, alice, 700_000, rid="a")
    assert alerts(sessions) == []
    spend(sessions, alice, 150_000, rid="b")  # 85%
    assert alerts(sessions) == [("budget-80", subject, "2025-03")]
    spend(sessions, alice, 100_000, rid="c")  # 95%: still one 80% alert
    assert alerts(sessions) == [("budget-80", subject, "2025-03")]
    spend(sessions, alice, 550_000, rid="d")  # 150%: a soft budget never refuses
    spend(sessions, alice, 10_000, rid="e")
    assert alerts(sessions) == [
        ("budget-100", subject, "2025-03"),
        ("budget-80", subject, "2025-03"),
    ]
    with sessions() as s:
        message = s.scalar(select(Alert.message).where(Alert.kind == "budget-100"))
    assert message == (
        "The soft monthly budget of user alice is at 150% ($1.50 of $1.00 in 2025-03): "
        "over the limit (a soft budget only alerts)."
    )  # when it crossed, not later
    with sessions() as s:
        message = s.scalar(select(Alert.message).where(Alert.kind == "budget-80"))
    # It crossed 80% at 85%: the alert says where the budget stood, not "reached 80%".
    assert message == (
        "The soft monthly budget of user alice is at 85% ($0.85 of $1.00 in 2025-03): "
        "past the 80% warning."
    )
    april = datetime(2025, 4, 2, tzinfo=UTC)  # a new period alerts again
    spend(sessions, alice, 900_000, at=april, rid="f")
    assert ("budget-80", subject, "2025-04") in alerts(sessions)


def test_hard_budget_alerts_too(sessions, alice):
    budget(sessions, "provider", "openai", 1_000)
    spend(sessions, alice, 1_000)
    assert alerts(sessions) == [
        ("budget-100", "provider:openai", "2025-03"),
        ("budget-80", "provider:openai", "2025-03"),
    ]


def test_settle_is_idempotent_and_release_spends_nothing(sessions, alice):
    budget(sessions, "user", str(alice.user_id), 10_000)
    handle = reserve(sessions, request_id="r", caller=alice, amounts={"openai": 4_000}, now=NOW)
    settle(sessions, handle, {"openai": 2_500}, NOW)
    settle(sessions, handle, {"openai": 2_500}, NOW)
    release(sessions, handle, NOW)
    b = row(sessions, "user", str(alice.user_id))
    assert (b.spent_micros, b.reserved_micros) == (2_500, 0)
    other = reserve(sessions, request_id="s", caller=alice, amounts={"openai": 7_500}, now=NOW)
    release(sessions, other, NOW)
    b = row(sessions, "user", str(alice.user_id))
    assert (b.spent_micros, b.reserved_micros) == (2_500, 0)
    with sessions() as s:
        assert s.scalar(select(func.count(Reservation.id))) == 0


def test_a_request_that_reserved_per_candidate_settles_its_whole_spend_once(sessions, alice):
    budget(sessions, "user", str(alice.user_id), 10_000)
    budget(sessions, "provider", "openai", 10_000)
    budget(sessions, "provider", "anthropic", 10_000)
    # The gateway reserves for each candidate it tries, under the one request id.
    first = reserve(sessions, request_id="r", caller=alice, amounts={"openai": 3_000}, now=NOW)
    second = reserve(sessions, request_id="r", caller=alice, amounts={"anthropic": 2_000}, now=NOW)
    spend_by_provider = {"openai": 700, "anthropic": 1_100}  # openai broke mid-stream
    with sessions.begin() as s:  # inside the caller's transaction, next to its ledger rows
        settle_in(s, first, spend_by_provider, NOW)
        settle_in(s, second, spend_by_provider, NOW)  # already settled with the first
    settle(sessions, second, spend_by_provider, NOW)
    got = {
        k: (b.spent_micros, b.reserved_micros)
        for k in [("user", str(alice.user_id)), ("provider", "openai"), ("provider", "anthropic")]
        if (b := row(sessions, *k))
    }
    assert got == {
        ("user", str(alice.user_id)): (1_800, 0),
        ("provider", "openai"): (700, 0),
        ("provider", "anthropic"): (1_100, 0),
    }


def test_a_crashed_requests_hold_is_charged_never_freed_and_a_late_settle_reconciles(
    sessions, alice
):
    budget(sessions, "user", str(alice.user_id), 10_000)
    crashed = reserve(
        sessions,
        request_id="crash",
        caller=alice,
        amounts={"openai": 8_000},
        now=NOW,
        ttl=timedelta(minutes=10),
        trace={"username": "alice", "user_id": alice.user_id, "source": "api"},
    )
    with pytest.raises(BudgetExceeded):  # still held
        reserve(
            sessions,
            request_id="a",
            caller=alice,
            amounts={"openai": 8_000},
            now=NOW + timedelta(minutes=9),
        )
    later = NOW + timedelta(minutes=11)
    with sessions.begin() as s:
        assert expire_reservations(s, later) == 1
        assert expire_reservations(s, later) == 0
    # Expired with its outcome unknown: the worst case is spent, not given back.
    b = row(sessions, "user", str(alice.user_id))
    assert (b.spent_micros, b.reserved_micros) == (8_000, 0)
    with pytest.raises(BudgetExceeded):
        reserve(sessions, request_id="b", caller=alice, amounts={"openai": 8_000}, now=later)
    with sessions() as s:
        interrupted = s.get(RequestRow, "crash")
        assert interrupted is not None
        assert (interrupted.status, interrupted.cost_micros, interrupted.estimated) == (
            "interrupted",
            8_000,
            True,
        )
    settle(sessions, crashed, {"openai": 1_000}, later)  # it finished after all
    b = row(sessions, "user", str(alice.user_id))
    assert (b.spent_micros, b.reserved_micros) == (1_000, 0)  # the estimate refunded once
    settle(sessions, crashed, {"openai": 1_000}, later)  # and settling again does nothing
    assert row(sessions, "user", str(alice.user_id)).spent_micros == 1_000
    # A charged hold whose request never returns stays until its month is long over.
    reserve(sessions, request_id="c", caller=alice, amounts={"openai": 3_000}, now=later)
    with sessions.begin() as s:
        assert expire_reservations(s, later + timedelta(minutes=11)) == 1
    assert row(sessions, "user", str(alice.user_id)).spent_micros == 4_000
    with sessions.begin() as s:
        expire_reservations(s, later + timedelta(minutes=11) + CHARGED_GRACE)
        assert s.scalar(select(func.count(Reservation.id))) == 0


def test_a_new_month_resets_spend_but_keeps_in_flight_holds(sessions, alice):
    budget(sessions, "user", str(alice.user_id), 10_000)
    spend(sessions, alice, 9_000)
    in_flight = reserve(
        sessions,
        request_id="late",
        caller=alice,
        amounts={"openai": 500},
        now=datetime(2025, 3, 31, 23, 55, tzinfo=UTC),
    )
    april = datetime(2025, 4, 1, 0, 0, 1, tzinfo=UTC)
    with sessions() as s:  # before anything touches it, the listing already shows April
        info = get_budget(s, "user", str(alice.user_id), april)
    assert info is not None
    assert (info.period, info.spent_micros, info.resets_on) == ("2025-04", 0, date(2025, 5, 1))
    reserve(sessions, request_id="new", caller=alice, amounts={"openai": 9_500}, now=april)
    b = row(sessions, "user", str(alice.user_id))
    assert (b.period, b.spent_micros, b.reserved_micros) == ("2025-04", 0, 10_000)
    settle(sessions, in_flight, {"openai": 400}, april)  # March's request, settled in April
    b = row(sessions, "user", str(alice.user_id))
    assert (b.period, b.spent_micros, b.reserved_micros) == ("2025-04", 400, 9_500)
    # A replica whose clock still says March cannot roll the month back.
    spend(sessions, alice, 100, at=datetime(2025, 3, 31, 23, 59, 59, tzinfo=UTC), rid="skew")
    b = row(sessions, "user", str(alice.user_id))
    assert (b.period, b.spent_micros) == ("2025-04", 500)


def test_an_unpriced_model_cannot_run_under_a_hard_budget(sessions, alice):
    budget(sessions, "team", str(alice.team_id), 10_000, hard=False)
    # Soft only: allowed, with nothing held.
    handle = reserve(sessions, request_id="a", caller=alice, amounts={"ollama": None}, now=NOW)
    assert [h.amount_micros for h in handle.holds] == [0]
    budget(sessions, "user", str(alice.user_id), 10_000)
    with pytest.raises(BudgetExceeded) as refused:
        reserve(
            sessions,
            request_id="b",
            caller=alice,
            amounts={"openai": 10, "ollama": None},
            now=NOW,
            unpriced_models=["ollama/mystery"],
        )
    assert refused.value.message.startswith(
        "ollama/mystery has no price, so it cannot run under a hard budget "
        "(your monthly budget). An admin can set its price on Admin → Prices"
    )


def test_estimate_remaining_is_the_tightest_hard_budget(sessions, alice):
    budget(sessions, "user", str(alice.user_id), 10_000)
    budget(sessions, "team", str(alice.team_id), 6_000)
    budget(sessions, "provider", "openai", 1)  # provider budgets depend on the route
    spend(sessions, alice, 1)
    reserve(sessions, request_id="r", caller=alice, amounts={"openai": 0}, now=NOW)
    with sessions() as s:
        assert estimate_remaining(s, alice, NOW) == 5_999
    budget(sessions, "team", str(alice.team_id), 1, hard=False)
    with sessions() as s:
        assert estimate_remaining(s, alice, NOW) == 9_999


# --- concurrency: many threads, one or two engines, SQLite and PostgreSQL ----------------


def hammer(
    factories: list[Factory],
    attempt: Callable[[Factory, str], None],
    threads: int = 16,
    attempts: int = 10,
    sample: Callable[[Factory], None] | None = None,
) -> Counter[str]:
    """Run attempts from all threads at once; returns outcome counts ("ok", "refused", errors)."""
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(threads)
    done = threading.Event()

    def worker(n: int) -> None:
        factory = factories[n % len(factories)]
        start.wait()
        for i in range(attempts):
            try:
                attempt(factory, f"t{n}-{i}")
                outcome = "ok"
            except BudgetExceeded:
                outcome = "refused"
            except Exception as exc:  # a deadlock or lock timeout would land here
                outcome = f"error: {exc.__class__.__name__}: {exc}"
            with lock:
                outcomes[outcome] += 1

    def sampler() -> None:
        while sample is not None and not done.wait(0.002):  # pause: leave the GIL to workers
            sample(factories[-1])

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    watcher = threading.Thread(target=sampler)
    watcher.start()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    done.set()
    watcher.join()
    return outcomes


@pytest.mark.parametrize("engines", [1, 2], ids=["one-engine", "two-replicas"])
def test_concurrent_reservations_fit_exactly_and_never_overspend(replicas, engines):
    factories = replicas[:engines]
    alice = caller_for(factories[0], "alice", team="Ops")
    fits = 37
    budget(factories[0], "user", str(alice.user_id), fits * 1_000)
    budget(factories[0], "team", str(alice.team_id), 10**9)
    budget(factories[0], "provider", "openai", 10**9)
    seen: list[tuple[int, int, int]] = []

    def attempt(factory: Factory, rid: str) -> None:
        reserve(factory, request_id=rid, caller=alice, amounts={"openai": 1_000}, now=NOW)

    def sample(factory: Factory) -> None:
        b = row(factory, "user", str(alice.user_id))
        seen.append((b.spent_micros, b.reserved_micros, b.limit_micros))

    outcomes = hammer(factories, attempt, sample=sample)
    assert outcomes == Counter({"ok": fits, "refused": 16 * 10 - fits})
    b = row(factories[0], "user", str(alice.user_id))
    assert (b.spent_micros, b.reserved_micros) == (0, fits * 1_000)
    assert seen and all(spent + held <= limit for spent, held, limit in seen)
    with factories[0]() as s:
        assert (
            s.scalar(select(func.count(Reservation.id)).where(Reservation.budget_id == b.id))
            == fits
        )
        assert (
            s.scalar(select(Budget.reserved_micros).where(Budget.scope == "provider"))
            == fits * 1_000
        )


@pytest.mark.parametrize("engines", [1, 2], ids=["one-engine", "two-replicas"])
def test_concurrent_reserve_and_settle_keep_the_counters_exact(replicas, engines):
    factories = replicas[:engines]
    alice = caller_for(factories[0], "alice", team="Ops")
    budget(factories[0], "user", str(alice.user_id), 50_000)
    budget(factories[0], "provider", "openai", 10**9)

    def attempt(factory: Factory, rid: str) -> None:
        handle = reserve(factory, request_id=rid, caller=alice, amounts={"openai": 1_000}, now=NOW)
        settle(factory, handle, {"openai": 600}, NOW)

    outcomes = hammer(factories, attempt, threads=8)
    assert set(outcomes) <= {"ok", "refused"}, outcomes
    user, provider = (
        row(factories[0], "user", str(alice.user_id)),
        row(factories[0], "provider", "openai"),
    )
    assert user.spent_micros == provider.spent_micros == 600 * outcomes["ok"] <= 50_000
    assert user.reserved_micros == provider.reserved_micros == 0
    assert outcomes["ok"] >= 50_000 // 1_000  # refusals only once the spend left no room


# --- the `switchboard budget` command ------------------------------------------------------


def run(*argv: str) -> tuple[int, str, str]:
    return run_cli(*argv, clock=lambda: NOW)


def test_cli_budget_set_and_list(sessions, alice):
    assert run("budget", "list") == (
        0,
        "No budgets yet. Set one with: switchboard budget set --user NAME --monthly 25\n",
        "",
    )
    code, out, err = run("budget", "set", "--user", "alice", "--monthly", "25")
    assert (code, err) == (0, "")
    assert out.startswith(
        "Set a hard (refuses requests over it) monthly budget of $25.00 for user alice."
    )
    assert run("budget", "set", "--team", "Ops", "--monthly", "$1,000.5", "--soft")[0] == 0
    assert run("budget", "set", "--provider", "openai", "--monthly", "0.000001")[0] == 0
    code, out, _ = run("budget", "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == [
        "BUDGET",
        "KIND",
        "LIMIT",
        "SPENT",
        "HELD",
        "LEFT",
        "PERIOD",
        "RESETS",
    ]
    assert lines[1].split() == [
        "user",
        "alice",
        "hard",
        "$25.00",
        "$0.00",
        "$0.00",
        "$25.00",
        "2025-03",
        "2025-04-01",
    ]
    assert lines[2].split()[:4] == ["team", "Ops", "soft", "$1,000.50"]
    assert lines[3].split()[:4] == ["provider", "openai", "hard", "$0.000001"]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("--user", "alice", "--monthly", "-5"), "'-5' is not an amount of dollars"),
        (("--user", "alice", "--monthly", "lots"), "'lots' is not an amount of dollars"),
        (("--user", "alice", "--monthly", "NaN"), "is not an amount of dollars"),
        (("--user", "alice", "--monthly", "1.0000001"), "more than 6 decimal places"),
        (("--user", "ghost", "--monthly", "5"), "No user named 'ghost'"),
        (("--team", "Nobody", "--monthly", "5"), "No team named 'Nobody'"),
        (("--provider", "openia", "--monthly", "5"), "Unknown provider 'openia'"),
    ],
)
def test_cli_budget_set_bad_input_gets_one_clear_line(sessions, alice, argv, fragment):
    code, out, err = run("budget", "set", *argv)
    assert (code, out) == (2, "")
    assert fragment in err and err.count("\n") == 1
    with sessions() as s:
        assert list_budgets(s, NOW) == []


def test_cli_budget_set_needs_exactly_one_scope(capsys):
    with pytest.raises(SystemExit) as exited:
        run("budget", "set", "--monthly", "5")
    assert exited.value.code == 2 and "one of the arguments" in capsys.readouterr().err
