"""Analytics figures on a small fixed ledger, each checked against hand-computed values."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from core.analytics import charts_data, exports, figures, recent, whatif
from core.analytics.alerts import current_alerts
from core.analytics.budgets_forecast import budgets_in_scope, burn_down, forecast
from core.analytics.filters import Filters, from_query_params, to_query_params, within_scope
from core.analytics.scope import scope_for
from core.errors import InvalidInput
from core.money import budgets
from core.money.catalog import load_catalog
from core.money.pricing import PriceBook
from core.store.tables import Budget, PreferenceRefusal, Team
from tests.conftest import add_user
from tests.support.ledger_rows import insert, request_row

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
PERIOD = Filters(date(2026, 3, 4), date(2026, 3, 10), "custom")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def ledger(sessions):
    """alice and bob in Ops (bob manages it), carol in Lab, boss the admin; seven requests."""
    alice = add_user(sessions, "alice", "member", "Ops")
    bob = add_user(sessions, "bob", "manager", "Ops")
    carol = add_user(sessions, "carol", "member", "Lab")
    boss = add_user(sessions, "boss", "admin")
    with sessions() as s:
        teams = dict(s.execute(select(Team.name, Team.id)).all())
    ops, lab = teams["Ops"], teams["Lab"]
    a = {"user_id": alice.id, "username": "alice", "team_id": ops}
    b = {"user_id": bob.id, "username": "bob", "team_id": ops}
    c = {"user_id": carol.id, "username": "carol", "team_id": lab}
    insert(
        sessions,
        request_row(
            at(9, 10),
            **a,
            prompt_tokens=1000,
            completion_tokens=500,
            cost_micros=7500,
            latency_ms=400,
            ttft_ms=100,
        ),
        request_row(
            at(9, 11),
            **a,
            prompt_tokens=2000,
            completion_tokens=1000,
            cost_micros=15000,
            latency_ms=800,
            ttft_ms=200,
        ),
        request_row(
            at(10, 9),
            **b,
            task="code",
            served_model="anthropic/claude-3-haiku-20240307",
            provider="anthropic",
            status="success-after-fallback",
            fallback_used=True,
            prompt_tokens=4000,
            completion_tokens=400,
            cost_micros=1500,
            latency_ms=1200,
            ttft_ms=300,
        ),
        request_row(
            at(10, 9, 30),
            **b,
            task="code",
            served_model=None,
            provider=None,
            status="failed",
            prompt_tokens=0,
            completion_tokens=0,
            cost_micros=0,
            latency_ms=50,
            ttft_ms=None,
        ),
        request_row(
            at(8, 15),
            **c,
            served_model="local/x",
            requested_model="local/x",
            provider="local",
            prompt_tokens=130_000,
            completion_tokens=100,
            cost_micros=None,
            latency_ms=2000,
            ttft_ms=None,
        ),
        request_row(
            at(5, 8),
            **a,
            task="code",
            served_model=None,
            provider=None,
            status="no-key",
            prompt_tokens=0,
            completion_tokens=0,
            cost_micros=0,
            latency_ms=3,
            ttft_ms=None,
        ),
        # The previous period (25 Feb - 3 Mar).
        request_row(
            at(1, 10),
            **a,
            prompt_tokens=1000,
            completion_tokens=500,
            cost_micros=7500,
            latency_ms=400,
            ttft_ms=100,
        ),
    )
    return {"alice": alice, "bob": bob, "carol": carol, "boss": boss, "ops": ops, "lab": lab}


def scope_of(sessions, user):
    with sessions() as s:
        return scope_for(s, user)


def test_key_figures_for_an_admin(sessions, ledger):
    scope = scope_of(sessions, ledger["boss"])
    with sessions() as s:
        cur = figures.key_figures(s, PERIOD, scope)
        prev = figures.key_figures(s, PERIOD.previous(), scope)
    assert (cur.requests, cur.cost_micros, cur.unpriced_requests) == (6, 24_000, 1)
    assert (cur.prompt_tokens, cur.completion_tokens) == (137_000, 2000)
    assert (cur.success_rate, cur.fallback_rate, cur.error_rate) == (4 / 6, 1 / 6, 2 / 6)
    # Successful latencies 400, 800, 1200, 2000: P50 is the 2nd (bucket 800-1000, middle),
    # P95 the 4th (bucket 2000-2500). TTFT 100, 200, 300 (carol's is missing).
    assert (cur.latency_p50_ms, cur.latency_p95_ms) == (900, 2250)
    assert (cur.ttft_p50_ms, cur.ttft_p95_ms) == (225, 350)
    assert PERIOD.previous().start == date(2026, 2, 25)
    assert (prev.requests, prev.cost_micros) == (1, 7500)
    assert figures.change(cur.cost_micros, prev.cost_micros) == pytest.approx(2.2)


def test_scope_members_see_themselves_managers_their_team(sessions, ledger):
    with sessions() as s:
        alice = figures.key_figures(s, PERIOD, scope_for(s, ledger["alice"]))
        bob = figures.key_figures(s, PERIOD, scope_for(s, ledger["bob"]))
        carol = figures.key_figures(s, PERIOD, scope_for(s, ledger["carol"]))
    assert (alice.requests, alice.cost_micros) == (3, 22_500)
    assert (bob.requests, bob.cost_micros) == (5, 24_000)
    assert (carol.requests, carol.cost_micros, carol.unpriced_requests) == (1, 0, 1)


def test_a_member_cannot_widen_the_scope_through_filters(sessions, ledger):
    carol_id = ledger["carol"].id
    asked, notes = from_query_params(
        {"range": "custom", "from": "2026-03-04", "to": "2026-03-10", "user": str(carol_id)},
        NOW.date(),
    )
    assert asked.user_id == carol_id and notes == []
    with sessions() as s:
        scope = scope_for(s, ledger["alice"])
        applied, notes = within_scope(s, asked, scope)
        assert applied.user_id is None and "your own usage" in notes[0]
        # Even if the filter were passed straight in, the scope term still applies.
        leaked = figures.key_figures(s, asked, scope)
        manager = scope_for(s, ledger["bob"])
        kept, notes = within_scope(
            s, Filters(PERIOD.start, PERIOD.end, user_id=ledger["alice"].id), manager
        )
    assert leaked.requests == 0
    assert kept.user_id == ledger["alice"].id and notes == []


def test_query_params_round_trip_and_bad_values(sessions):
    today = date(2026, 3, 10)
    f, notes = from_query_params({"range": "last-month", "task": "code", "user": "x"}, today)
    assert (f.start, f.end, f.task, f.user_id) == (
        date(2026, 2, 1),
        date(2026, 2, 28),
        "code",
        None,
    )
    assert notes == ["Ignored user='x': it must be a number."]
    assert from_query_params(to_query_params(f), today)[0] == f
    f, notes = from_query_params(
        {"range": "custom", "from": "2026-03-09", "to": "2026-03-01"}, today
    )
    assert f.preset == "30d" and "custom range" in notes[0]
    f, _ = from_query_params({"range": "this-month"}, today)
    assert (f.start, f.end, f.days) == (date(2026, 3, 1), today, 10)


def test_breakdowns(sessions, ledger):
    scope = scope_of(sessions, ledger["boss"])
    with sessions() as s:
        tasks = charts_data.cost_by(s, PERIOD, scope, "task")
        users = charts_data.cost_by(s, PERIOD, scope, "user")
        teams = charts_data.cost_by(s, PERIOD, scope, "team")
        tokens = charts_data.tokens_by_provider(s, PERIOD, scope)
        daily = charts_data.cost_over_time(s, PERIOD, scope, "provider", "day")
        hourly = charts_data.cost_over_time(s, PERIOD, scope, "model", "hour")
        perf = charts_data.model_performance(s, PERIOD, scope, ratings={"openai/gpt-4o": 4.5})
        rates = charts_data.rates_over_time(s, PERIOD, scope)
    assert tasks[["name", "requests", "cost_micros", "unpriced_requests"]].values.tolist() == [
        ["summarise", 3, 22_500, 1],
        ["code", 3, 1500, 0],
    ]
    assert users[["name", "cost_micros"]].values.tolist() == [
        ["alice", 22_500],
        ["bob", 1500],
        ["carol", 0],
    ]
    assert teams[["name", "cost_micros"]].values.tolist() == [["Ops", 24_000], ["Lab", 0]]
    assert dict(zip(tokens["provider"], tokens["tokens"], strict=True)) == {
        "local": 130_100,
        "openai": 4500,
        "anthropic": 4400,
        "(none)": 0,
    }
    assert daily[daily["series"] == "openai"]["cost_usd"].tolist() == [0.0225]
    hours = hourly[hourly["series"] == "openai/gpt-4o"]
    # gpt-4o was asked for on 5 Mar 08:00 (no key) and 10 Mar 09:30 (failed), served 9 Mar.
    assert [(p.day, p.hour) for p in hours["period"]] == [(5, 8), (9, 10), (9, 11), (10, 9)]
    assert hours["cost_usd"].tolist() == [0, 0.0075, 0.015, 0]
    gpt = perf[(perf["provider"] == "openai") & (perf["task"] == "summarise")].iloc[0]
    failed = perf[(perf["provider"] == "(none)") & (perf["task"] == "code")].iloc[0]
    assert (failed["requests"], failed["success_rate"], failed["sample_size"]) == (2, 0.0, 0)
    assert (
        gpt["requests"],
        gpt["success_rate"],
        gpt["avg_latency_ms"],
        gpt["rating"],
        gpt["sample_size"],
    ) == (2, 1.0, 600, 4.5, 2)
    assert gpt["cost_per_1k_usd"] == pytest.approx(0.0225 / 4.5)
    day10 = rates[rates["day"] == "2026-03-10"].iloc[0]
    assert (day10["requests"], day10["fallback_rate"], day10["error_rate"]) == (2, 0.5, 0.5)


def test_forecast_projects_month_end_and_run_out_day(sessions, ledger):
    with sessions.begin() as s:
        budgets.set_budget(s, "team", str(ledger["ops"]), 10_000_000, True, "t", NOW)
        budgets.set_budget(s, "user", str(ledger["alice"].id), 5_000_000, False, "t", NOW)
        budgets.set_budget(s, "team", str(ledger["lab"]), 1_000_000, True, "t", NOW)
        for scope, key, spent in (
            ("team", ledger["ops"], 4_000_000),
            ("user", ledger["alice"].id, 4_500_000),
        ):
            s.execute(
                update(Budget)
                .where(Budget.scope == scope, Budget.scope_key == str(key))
                .values(spent_micros=spent, period="2026-03")
            )
    with sessions() as s:
        mine = budgets_in_scope(s, scope_for(s, ledger["alice"]), NOW)
        team = budgets_in_scope(s, scope_for(s, ledger["bob"]), NOW)
        every = budgets_in_scope(s, scope_for(s, ledger["boss"]), NOW)
        ops_budget = next(b for b in team if b.scope == "team")
        burn = burn_down(s, ops_budget, NOW)
    assert {b.label for b in mine} == {"user alice", "team Ops"}
    assert {b.label for b in team} == {"user alice", "team Ops"}
    assert len(every) == 3
    # 9.5 of 31 days gone: $4 becomes 4 * 31 / 9.5 = $13.052631 (rounded down); the
    # $10 limit is reached after 10 / 4 * 9.5 = 23.75 days, on 24 March.
    ops = forecast(ops_budget, NOW)
    assert (ops.projected_micros, ops.run_out_day, ops.percent, ops.reached) == (
        13_052_631,
        date(2026, 3, 24),
        40,
        None,
    )
    alice = forecast(next(b for b in mine if b.scope == "user"), NOW)
    assert (alice.projected_micros, alice.run_out_day, alice.reached) == (
        14_684_210,
        date(2026, 3, 11),
        80,
    )
    # Burn-down: Ops spend per day this month, cumulative (9 Mar 22,500; 10 Mar +1,500;
    # 1 Mar 7,500 is earlier in the month).
    assert burn.values.tolist() == [
        [date(2026, 3, 1), 7500],
        [date(2026, 3, 5), 7500],
        [date(2026, 3, 9), 30_000],
        [date(2026, 3, 10), 31_500],
    ]


def test_what_if_reprices_tokens_and_flags_context(sessions, ledger):
    scope = scope_of(sessions, ledger["boss"])
    book = PriceBook(load_catalog(), [], NOW)
    with sessions() as s:
        result = whatif.what_if(s, PERIOD, scope, target="openai/gpt-4o-mini", book=book, now=NOW)
        only = whatif.what_if(
            s, PERIOD, scope, target="openai/gpt-4o-mini", book=book, now=NOW, task="summarise"
        )
        by_model = whatif.what_if(
            s,
            PERIOD,
            scope,
            target="openai/gpt-4o-mini",
            book=book,
            now=NOW,
            source_model="openai/gpt-4o",
        )
        with pytest.raises(InvalidInput, match="no known price"):
            whatif.what_if(s, PERIOD, scope, target="local/x", book=book, now=NOW)
    # gpt-4o-mini: $0.15 in, $0.60 out per 1M. summarise: 133,000 in, 1,600 out
    # = 19,950 + 960 = 20,910 micro-dollars; code: 4,000 in, 400 out = 600 + 240 = 840.
    rows = {r.task: r for r in result.rows}
    assert (rows["summarise"].target_micros, rows["summarise"].current_micros) == (20_910, 22_500)
    assert (rows["code"].target_micros, rows["code"].current_micros) == (840, 1500)
    assert (result.target_micros, result.difference_micros) == (21_750, 21_750 - 24_000)
    # carol's 130,000-token prompt does not fit the 128,000-token window.
    assert (result.context_window, rows["summarise"].too_long, result.too_long) == (128_000, 1, 1)
    assert result.unpriced_requests == 1
    assert [r.task for r in only.rows] == ["summarise"]
    # gpt-4o's own traffic: 3,000 in, 1,500 out = 450 + 900 = 1,350.
    assert (by_model.target_micros, by_model.current_micros, by_model.too_long) == (1350, 22_500, 0)
    # Half a micro-dollar rounds up, once: 1 * 0.25 + 1 * 1.25 = 1.5 -> 2.
    assert whatif.reprice(1, 1, Decimal("0.25"), Decimal("1.25")) == 2


def test_alerts(sessions, ledger):
    now = at(10, 12)
    base = {"user_id": ledger["alice"].id, "username": "alice", "team_id": ledger["ops"]}
    rows = [request_row(now - timedelta(minutes=5 + i), **base) for i in range(8)]
    rows += [
        request_row(
            now - timedelta(minutes=20 + i),
            **base,
            fallback_used=True,
            status="success-after-fallback",
        )
        for i in range(2)
    ]
    rows.append(
        request_row(
            now - timedelta(minutes=40),
            **base,
            served_model="local/x",
            provider="local",
            cost_micros=None,
        )
    )
    rows.append(
        request_row(
            now - timedelta(minutes=30),
            **base,
            served_model=None,
            provider=None,
            status="no-key",
            cost_micros=0,
        )
    )
    insert(sessions, *rows)
    with sessions.begin() as s:
        budgets.set_budget(s, "team", str(ledger["ops"]), 1_000_000, True, "t", now)
        s.execute(update(Budget).values(spent_micros=1_000_000, period="2026-03"))
        s.add(
            PreferenceRefusal(
                at=now - timedelta(hours=2),
                user_id=ledger["alice"].id,
                username="alice",
                provider="mistral",
                reason="no key",
            )
        )
    with sessions() as s:
        admin = {a.kind: a for a in current_alerts(s, scope_for(s, ledger["boss"]), now)}
        carol = current_alerts(s, scope_for(s, ledger["carol"]), now)
    assert set(admin) == {
        "fallback-hour",
        "fallback-day",
        "budget-100",
        "preference-refused",
        "unpriced-model",
        "no-key",
    }
    # Last hour: alice's 12 requests, 2 fell back. Last day: also bob's 09:00 (a fallback)
    # and 09:30 of 10 March.
    assert "2 of 12" in admin["fallback-hour"].message
    assert "3 of 14" in admin["fallback-day"].message
    assert admin["no-key"].subject == "openai/gpt-4o" and "1 request" in admin["no-key"].message
    assert admin["budget-100"].subject == f"team:{ledger['ops']}"
    assert admin["unpriced-model"].link["model"] == "local/x"
    assert carol == []  # nothing of carol's is alerting, and others' alerts are not hers


def test_recent_requests_page_by_keyset_and_attempts_stay_in_scope(sessions, ledger):
    admin = scope_of(sessions, ledger["boss"])
    alice = scope_of(sessions, ledger["alice"])
    seen = []
    with sessions() as s:
        cursor = None
        while True:
            page = recent.recent_requests(s, PERIOD, admin, before=cursor, limit=4)
            seen += list(page.rows["id"])
            cursor = page.next_cursor
            if cursor is None:
                break
        carol_request = s.scalar(
            select(recent.RequestRow.id).where(recent.RequestRow.username == "carol")
        )
        assert recent.attempts_of(s, carol_request, admin)[0]["model"] == "local/x"
        assert recent.attempts_of(s, carol_request, alice) == []
    times = [t for t in (request_time(sessions, i) for i in seen)]
    assert len(seen) == len(set(seen)) == 6 and times == sorted(times, reverse=True)


def request_time(sessions, request_id):
    with sessions() as s:
        return s.scalar(select(recent.RequestRow.at).where(recent.RequestRow.id == request_id))


def test_exports_csv(sessions, ledger):
    admin = scope_of(sessions, ledger["boss"])
    alice = scope_of(sessions, ledger["alice"])
    with sessions() as s:
        everything = "".join(exports.requests_csv(s, PERIOD, admin)).splitlines()
        hers = "".join(exports.requests_csv(s, PERIOD, alice)).splitlines()
        summary = "".join(exports.summary_csv(s, PERIOD, admin)).splitlines()
    assert everything[0].split(",")[:3] == ["time", "request_id", "user"]
    assert len(everything) == 7 and len(hers) == 4
    assert all(",alice," in line for line in hers[1:])
    assert summary == [
        "kind,name,requests,tokens,cost_usd,unpriced_requests",
        "user,alice,3,4500,0.022500,0",
        "user,bob,2,4400,0.001500,0",
        "user,carol,1,130100,0.000000,1",
        "team,Ops,5,8900,0.024000,0",
        "team,Lab,1,130100,0.000000,1",
    ]
