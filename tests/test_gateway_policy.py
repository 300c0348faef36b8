"""Keys, routes, budgets, rate limits, pricing and redaction as the gateway applies them."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.accounts import keys
from core.clock import utc_now
from core.errors import BudgetExceeded, RateLimited
from core.money import budgets, ratelimits
from core.request import STATUS_SUCCESS
from core.settings import endpoints, routes
from core.store.tables import ORG_OWNER_ID, ApiKey, RequestRow
from tests.conftest import add_user
from tests.fakes import FakeOllama, Reply, Status
from tests.gateway_support import GPT, HAIKU, MINI, OPENAI_KEY, collect

OWN_KEY = "sk-proj-own-key-aaaa1111"
TEAM_KEY = "sk-proj-team-key-bbbb2222"
ORG_KEY = "sk-proj-org-key-cccc3333"


def _set_key(rig, owner_kind: str, owner_id: int, secret: str) -> None:
    with rig.sessions.begin() as s:
        keys.set_key(
            s,
            rig.cipher,
            owner_kind=owner_kind,
            owner_id=owner_id,
            provider="openai",
            secret=secret,
            actor="test",
            now=utc_now(),
            known_providers=rig.catalog.providers(),
        )


async def test_key_resolution_order_own_team_org_env(rig):
    teammate = add_user(rig.sessions, "tess", "member", team="Blue")
    caller = rig.caller.__class__(teammate.id, teammate.username, "member", 1)
    used = []
    for owner_kind, owner_id, secret in [
        (None, None, None),
        ("org", ORG_OWNER_ID, ORG_KEY),
        ("team", 1, TEAM_KEY),
        ("user", teammate.id, OWN_KEY),
    ]:
        if owner_kind:
            _set_key(rig, owner_kind, owner_id, secret)
        request = rig.request(GPT, fallbacks=())
        await rig.gateway.complete(request.__class__(**{**request.__dict__, "caller": caller}))
        used.append(rig.openai.requests("gpt-4o")[-1].key_last4)
    assert used == [OPENAI_KEY[-4:], ORG_KEY[-4:], TEAM_KEY[-4:], OWN_KEY[-4:]]


@pytest.mark.parametrize("code", [401, 403])
async def test_auth_failure_marks_the_key_and_never_stores_it(rig, code):
    _set_key(rig, "user", rig.user.id, OWN_KEY)
    rig.openai.script("gpt-4o", Status(code, message=f"Incorrect API key provided: {OWN_KEY}."))
    done = await rig.gateway.complete(rig.request(GPT, fallbacks=(HAIKU,)))
    assert done.summary.model == HAIKU
    assert rig.openai.count("gpt-4o") == 1  # not retried: the key itself is the problem
    [row] = rig.rows()
    with rig.sessions() as s:
        stored = s.scalar(select(ApiKey))
        assert stored.last_auth_failure_at is not None
    attempts = rig.attempts(row.id)
    assert "Incorrect API key" in attempts[0]["error_message"]
    everything = repr(attempts) + repr(done.summary)
    assert OWN_KEY not in everything and OWN_KEY[3:] not in everything


async def test_requested_model_goes_first_then_the_route(rig):
    rig.set_route([HAIKU, MINI])
    rig.openai.script("gpt-4o", Status(400))
    done = await rig.gateway.complete(rig.request(GPT))
    assert done.summary.chain == (GPT, HAIKU, MINI) and done.summary.model == HAIKU
    with pytest.raises(Exception, match="Every model"):
        rig.openai.script("gpt-4o", Status(400))
        await rig.gateway.complete(rig.request(GPT, fallbacks=()))


async def test_task_route_beats_user_beats_org(rig):
    with rig.sessions.begin() as s:
        ok = lambda m: True  # noqa: E731
        routes.set_route(
            s, scope="org", scope_id=0, models=[HAIKU], known_model=ok, actor="t", now=utc_now()
        )
        routes.set_route(
            s,
            scope="user",
            scope_id=rig.user.id,
            models=[MINI],
            known_model=ok,
            actor="t",
            now=utc_now(),
        )
        routes.set_route(
            s,
            scope="org",
            scope_id=0,
            task="code",
            models=[GPT],
            known_model=ok,
            actor="t",
            now=utc_now(),
        )
    a = await rig.gateway.complete(rig.request("auto"))
    b = await rig.gateway.complete(rig.request("auto", task="code"))
    assert (a.summary.model, a.summary.route_source) == (MINI, "user")
    assert (b.summary.model, b.summary.route_source) == (GPT, "task:org")


async def test_team_routes_apply_to_members_in_order(rig):
    """request fallbacks > task route (user, team, org) > user > team > org default."""
    from dataclasses import replace

    from tests.support.compare import caller

    dated = "openai/gpt-4o-2024-08-06"
    tess = add_user(rig.sessions, "tess", "member", team="Blue")
    member = caller(rig.sessions, tess.id)
    assert member.team_id is not None
    ok = lambda m: True  # noqa: E731

    def route(scope: str, scope_id: int, models: list[str], task: str = "") -> None:
        with rig.sessions.begin() as s:
            routes.set_route(
                s,
                scope=scope,
                scope_id=scope_id,
                task=task,
                models=models,
                known_model=ok,
                actor="t",
                now=utc_now(),
            )

    async def served(who, task: str = "", **kw) -> tuple[str, str]:
        request = replace(rig.request("auto", task=task, **kw), caller=who)
        done = await rig.gateway.complete(request)
        return done.summary.model, done.summary.route_source

    route("org", 0, [HAIKU])
    route("team", member.team_id, [MINI])
    route("team", member.team_id, [GPT], task="code")
    route("org", 0, [HAIKU], task="code")
    assert await served(member) == (MINI, "team")  # team default beats org default
    assert await served(member, "code") == (GPT, "task:team")  # team task beats org task
    assert await served(rig.caller) == (HAIKU, "org")  # not in the team: none of its routes
    assert await served(rig.caller, "code") == (HAIKU, "task:org")

    route("user", tess.id, [dated])
    assert await served(member) == (dated, "user")  # user default beats team default
    assert await served(member, "code") == (GPT, "task:team")  # task route beats user default
    assert await served(member, "code", fallbacks=(HAIKU,)) == (HAIKU, "request")
    recorded = sorted(
        (r.route_source, r.served_model, r.team_id) for r in rig.rows() if r.user_id == tess.id
    )
    team = member.team_id
    assert recorded == sorted(
        [
            ("team", MINI, team),
            ("task:team", GPT, team),
            ("user", dated, team),
            ("task:team", GPT, team),
            ("request", HAIKU, team),
        ]
    )


async def test_cost_optimised_order_is_recorded_with_its_reason(rig):
    rig.set_route([GPT, MINI], cost_optimised=True)
    done = await rig.gateway.complete(rig.request("auto"))
    assert done.summary.chain[0] == MINI  # far cheaper, nothing else known yet
    [row] = rig.rows()
    assert row.order_reason.startswith("cost-optimised: openai/gpt-4o-mini=")
    assert "price 1.00" in row.order_reason


def _cost_optimised_user_route(rig, *provider_order: str) -> None:
    """The user's own cost-optimised route [GPT, HAIKU], default weights (40/30/20/10)."""
    with rig.sessions.begin() as s:
        routes.set_route(
            s,
            scope="user",
            scope_id=rig.user.id,
            models=[GPT, HAIKU],
            known_model=lambda m: True,
            actor="t",
            now=utc_now(),
            options=routes.RouteOptions(cost_optimised=True, provider_order=provider_order),
        )


def _same_price_for_gpt_and_haiku(rig) -> None:
    """A negotiated price that makes both cost the same, so price cannot decide the order."""
    from datetime import timedelta
    from decimal import Decimal

    from core.money import pricing

    with rig.sessions.begin() as s:
        for model in (GPT, HAIKU):
            pricing.set_price_override(
                s,
                model,
                Decimal("1"),
                Decimal("2"),
                utc_now() - timedelta(days=1),
                "t",
                utc_now(),
                known_model=lambda m: True,
            )


def _seed_calls(rig, model: str, *, ok: int, failed: int = 0, latency_ms: int = 500) -> None:
    """Ledger history for ``model`` an hour before the rig's clock: ok and failed calls."""
    from datetime import timedelta

    from core.store import ledger
    from tests.support.ledger_rows import attempt_row, request_row

    at = rig.clock.now - timedelta(hours=1)
    provider = model.split("/", 1)[0]
    requests, attempts = [], []
    for i in range(ok + failed):
        good = i < ok
        req = request_row(
            at,
            user_id=rig.user.id,
            username=rig.user.username,
            team_id=None,
            requested_model=model,
            served_model=model if good else None,
            provider=provider,
            latency_ms=latency_ms,
            status="success" if good else "failed",
            finish_reason="stop" if good else None,
        )
        requests.append(req)
        attempts.append(
            attempt_row(
                req,
                model=model,
                outcome="ok" if good else "error",
                status_code=200 if good else 503,
            )
        )
    with rig.sessions.begin() as s:
        ledger.insert_rows(s, requests, attempts)


def _reason_parts(reason: str) -> dict[str, str]:
    """{model: "price 1.00, latency 0.00, ..."} from a recorded cost-optimised reason."""
    assert reason.startswith("cost-optimised: ")
    parts = {}
    for item in reason.removeprefix("cost-optimised: ").split("; "):
        model, _, rest = item.partition("=")
        parts[model] = rest
    return parts


@pytest.mark.parametrize("factor", ["latency", "success rate", "preference"])
async def test_observed_latency_success_and_stated_preference_each_change_the_order(rig, factor):
    from datetime import timedelta

    _same_price_for_gpt_and_haiku(rig)
    _cost_optimised_user_route(rig)
    before = await rig.gateway.complete(rig.request("auto"))
    # Equal price, no history: the route's own order stands.
    assert before.summary.chain == (GPT, HAIKU) and before.summary.model == GPT
    assert _reason_parts(before.summary.order_reason) == {
        GPT: "0.75 (price 1.00, latency 0.50, quality 0.50, preference 1.00)",
        HAIKU: "0.65 (price 1.00, latency 0.50, quality 0.50, preference 0.00)",
    }
    rig.clock.advance(timedelta(days=8).total_seconds())  # that call leaves the 7-day window

    if factor == "latency":  # GPT answers slowly, HAIKU quickly; both always succeed
        _seed_calls(rig, GPT, ok=6, latency_ms=4000)
        _seed_calls(rig, HAIKU, ok=6, latency_ms=400)
        expected = {
            GPT: "0.70 (price 1.00, latency 0.00, quality 1.00, preference 1.00)",
            HAIKU: "0.90 (price 1.00, latency 1.00, quality 1.00, preference 0.00)",
        }
    elif factor == "success rate":  # same speed, but GPT fails four calls in five
        _seed_calls(rig, GPT, ok=2, failed=8, latency_ms=500)
        _seed_calls(rig, HAIKU, ok=10, latency_ms=500)
        expected = {
            GPT: "0.84 (price 1.00, latency 1.00, quality 0.20, preference 1.00)",
            HAIKU: "0.90 (price 1.00, latency 1.00, quality 1.00, preference 0.00)",
        }
    else:  # the user says they prefer anthropic
        _cost_optimised_user_route(rig, "anthropic", "openai")
        expected = {
            GPT: "0.65 (price 1.00, latency 0.50, quality 0.50, preference 0.00)",
            HAIKU: "0.75 (price 1.00, latency 0.50, quality 0.50, preference 1.00)",
        }
    rig.gateway.refresh()
    after = await rig.gateway.complete(rig.request("auto"))

    s = after.summary
    assert s.chain == (HAIKU, GPT) and s.model == HAIKU and s.route_source == "user"
    assert rig.openai.count("gpt-4o") == 1  # only the first request went to GPT
    parts = _reason_parts(s.order_reason)
    assert list(parts) == [HAIKU, GPT]
    # Weights 0.4 price, 0.3 latency, 0.2 quality (success rate), 0.1 preference.
    assert parts == expected
    row = next(r for r in rig.rows() if r.id == s.request_id)
    assert (tuple(row.chain), row.order_reason, row.served_model) == (
        (HAIKU, GPT),
        s.order_reason,
        HAIKU,
    )


async def test_hard_budget_refuses_with_402_and_calls_nobody(rig):
    with rig.sessions.begin() as s:
        budgets.set_budget(s, "user", str(rig.user.id), 10, True, "t", utc_now())  # $0.00001
    with pytest.raises(BudgetExceeded) as info:
        await rig.gateway.complete(rig.request(GPT, fallbacks=(MINI,)))
    assert info.value.http_status == 402 and "$0.00" in info.value.message
    assert rig.openai.count() == 0
    [row] = rig.rows()
    assert row.status == "refused-budget"


async def test_budget_is_settled_to_the_actual_cost(rig):
    with rig.sessions.begin() as s:
        budgets.set_budget(s, "user", str(rig.user.id), 5_000_000, True, "t", utc_now())
    done = await rig.gateway.complete(rig.request(GPT, fallbacks=()))
    rig.rows()  # flush the writer
    with rig.sessions() as s:
        [b] = budgets.list_budgets(s)
    assert (b.spent_micros, b.reserved_micros) == (done.summary.cost_micros, 0)


async def test_unpriced_endpoint_model_is_flagged_not_free(rig):
    with FakeOllama() as ollama:
        with rig.sessions.begin() as s:
            endpoints.add_endpoint(
                s,
                name="local",
                kind="openai-compatible",
                api_base=ollama.base_url,
                models=["llama3.2"],
                actor="t",
                now=utc_now(),
                builtin_providers=rig.catalog.providers(),
            )
        rig.gateway.refresh()
        text, s = await collect(rig.gateway, rig.request("local/llama3.2", stream=True))
    assert text and s.status == STATUS_SUCCESS and s.provider == "local"
    assert (s.cost_micros, s.priced) == (None, False)
    [row] = rig.rows()
    assert (row.cost_micros, row.priced) == (None, False)


async def test_rate_limit_refuses_with_retry_after_and_is_recorded(rig):
    with rig.sessions.begin() as s:
        ratelimits.set_rate_limit(s, rig.user.id, 2, None, "t", utc_now())
    for _ in range(2):
        await rig.gateway.complete(rig.request(GPT, fallbacks=()))
    with pytest.raises(RateLimited) as info:
        await rig.gateway.complete(rig.request(GPT, fallbacks=()))
    assert info.value.retry_after_s >= 1 and rig.openai.count() == 2
    statuses = [r.status for r in rig.rows()]
    assert statuses.count("refused-rate-limit") == 1


def test_estimate_gives_a_range_and_names_unpriced_models(rig):
    rig.set_route([GPT, MINI])
    estimate = rig.gateway.estimate(rig.request("auto", max_tokens=1000))
    assert estimate.prompt_tokens > 0
    assert 0 < estimate.low_micros < estimate.high_micros
    assert estimate.unpriced_models == ()


async def test_flapping_outage_recovers_without_losing_requests(rig):
    rig.openai.script("gpt-4o", *[Status(502), Reply()] * 5)
    results = [await rig.gateway.complete(rig.request(GPT, fallbacks=())) for _ in range(5)]
    assert all(r.summary.status == STATUS_SUCCESS for r in results)
    assert len(rig.rows()) == 5 and rig.openai.count("gpt-4o") == 10
    with rig.sessions() as s:
        assert s.scalar(select(RequestRow.id).where(RequestRow.status != "success")) is None


async def test_policy_is_cached_briefly_and_refresh_applies_changes_at_once(rig):
    rig.gateway = rig.gateway.__class__(
        sessions=rig.sessions,
        catalog=rig.catalog,
        cipher=rig.cipher,
        clock=rig.clock,
        sleep=rig.sleeps,
        environ={"OPENAI_API_KEY": OPENAI_KEY},
        settings=rig.gateway.settings.__class__(policy_ttl_s=60.0),
    )
    try:
        await rig.gateway.complete(rig.request(GPT, fallbacks=()))
        _set_key(rig, "user", rig.user.id, OWN_KEY)
        await rig.gateway.complete(rig.request(GPT, fallbacks=()))
        assert rig.openai.requests("gpt-4o")[-1].key_last4 == OPENAI_KEY[-4:]  # cached
        rig.gateway.refresh()
        await rig.gateway.complete(rig.request(GPT, fallbacks=()))
        assert rig.openai.requests("gpt-4o")[-1].key_last4 == OWN_KEY[-4:]
    finally:
        rig.gateway.close()


async def test_a_warm_request_reads_nothing_from_the_database(rig):
    """Once routes, keys and limits are cached, admission runs on the loop with no query."""
    import threading

    import litellm  # noqa: F401  (a first import takes seconds, longer than the 2 s policy TTL)
    from sqlalchemy import event

    from core.gateway.gateway import Gateway

    # The rig's gateway caches nothing (TTL 0) so tests see changes at once; this one
    # has the production defaults.
    gateway = Gateway(
        sessions=rig.sessions, catalog=rig.catalog, cipher=rig.cipher, environ=rig.gateway.environ
    )
    engine = rig.sessions.kw["bind"]
    seen: list[tuple[str, int]] = []

    def record(conn, cursor, statement, *rest):
        seen.append((statement.split(None, 1)[0].upper(), threading.get_ident()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        await gateway.complete(rig.request(GPT))  # warms the caches, on a worker thread
        gateway.flush()
        seen.clear()
        loop_thread = threading.get_ident()
        done = await gateway.complete(rig.request(GPT))
        gateway.flush()
    finally:
        event.remove(engine, "before_cursor_execute", record)
        await gateway.aclose()
        gateway.close()
    assert done.summary.status == STATUS_SUCCESS
    assert not [s for s, _ in seen if s == "SELECT"], seen
    assert not [t for _, t in seen if t == loop_thread]  # nothing ran on the event loop
    assert {s for s, _ in seen} >= {"INSERT"}  # the ledger writer's rows, on its own thread


async def test_concurrent_cold_requests_share_one_load_of_each_policy(rig):
    """32 requests missing the same cached facts at once cost the queries of one request."""
    import asyncio

    import litellm  # noqa: F401  (a first import takes longer than the 2 s policy TTL)
    from sqlalchemy import event

    from core.gateway.gateway import Gateway

    engine = rig.sessions.kw["bind"]
    selects: list[str] = []

    def record(conn, cursor, statement, *rest):
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    async def cold_round(clients: int) -> int:
        gateway = Gateway(
            sessions=rig.sessions,
            catalog=rig.catalog,
            cipher=rig.cipher,
            environ=rig.gateway.environ,
        )  # production TTLs, nothing cached yet
        selects.clear()
        try:
            done = await asyncio.gather(
                *(gateway.complete(rig.request(GPT)) for _ in range(clients))
            )
            gateway.flush()
        finally:
            await gateway.aclose()
            gateway.close()
        assert all(d.summary.status == STATUS_SUCCESS for d in done)
        return len(selects)

    event.listen(engine, "before_cursor_execute", record)
    try:
        one = await cold_round(1)
        many = await cold_round(32)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert one > 0
    assert many == one, selects
