"""Core of the settings pages: chain preview, provider order refusals, option ranges,
recommendations, the key Test, user administration and `switchboard import-env`."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from core.accounts import auth, keys
from core.clock import utc_now
from core.compare import recommend
from core.errors import AuthenticationFailed, Conflict, InvalidInput
from core.request import Caller
from core.settings import keytest, preferences, routes, shared_routes
from core.settings.routes import RouteOptions
from core.settings.targets import TargetResolver
from core.store.ledger import ModelStats
from core.store.tables import ORG_OWNER_ID, ApiKey, AuditEntry, PreferenceRefusal, RouteRow
from core.upstream.breaker import BreakerState
from tests.conftest import PASSWORD, TEST_ROUNDS, add_user
from tests.fakes import Status
from tests.gateway_support import GPT, HAIKU, MINI
from tests.support.cli import run_cli


def _resolver(rig) -> TargetResolver:
    return rig.gateway.resolver()


# --- preview -----------------------------------------------------------------------------


def test_preview_skips_models_without_key_and_with_an_open_breaker(rig):
    sources = {"openai": "own", "anthropic": None}
    open_breaker = BreakerState(f"{MINI}@own:7", "open", 10, 10, utc_now(), utc_now())
    steps, reason = preferences.preview_chain(
        [GPT, HAIKU, MINI, "nope/unknown"],
        RouteOptions(),
        resolver=_resolver(rig),
        key_source=sources.get,
        breakers=[open_breaker],
    )
    assert [(s.model, s.position) for s in steps] == [
        (GPT, 1),
        (HAIKU, None),
        (MINI, None),
        ("nope/unknown", None),
    ]
    assert steps[1].reason == "skipped: no key for anthropic"
    assert "circuit open" in steps[2].reason
    assert "not a known model" in steps[3].reason
    assert reason is None


def test_preview_follows_the_options(rig):
    resolver = _resolver(rig)
    steps, _ = preferences.preview_chain(
        [GPT, MINI],
        RouteOptions(auto_fallback=False),
        resolver=resolver,
        key_source=lambda p: "env",
        breakers=[],
    )
    assert [s.position for s in steps] == [1, None]
    assert steps[1].reason == "skipped: automatic fallback is off"
    prices = {GPT: Decimal("4.375"), MINI: Decimal("0.2625")}
    steps, reason = preferences.preview_chain(
        [GPT, MINI],
        RouteOptions(cost_optimised=True),
        resolver=resolver,
        key_source=lambda p: "env",
        breakers=[],
        prices=prices,
        stats={},
    )
    assert [s.model for s in steps] == [MINI, GPT]  # the cheaper model goes first
    assert reason is not None and reason.startswith("cost-optimised")


# --- saving preferences --------------------------------------------------------------------


def test_route_options_are_range_checked_and_nothing_is_saved(sessions):
    user = add_user(sessions, "pat")
    for options, message in [
        (RouteOptions(temperature=2.5), "Temperature 2.5 is out of range"),
        (RouteOptions(max_tokens=0), "Max tokens 0 is out of range"),
        (RouteOptions(weights=routes.Weights(0, 0, 0, 0)), "at least one above zero"),
        (RouteOptions(total_timeout_s=0), "The total timeout 0 s is out of range"),
        (RouteOptions(connect_timeout_s=-1), "The connect timeout -1 s is out of range"),
        (RouteOptions(idle_timeout_s=float("nan")), "stream idle timeout nan s"),
        (RouteOptions(first_token_timeout_s=3601), "at most 3600 seconds"),
        (RouteOptions(max_retries=6), "Retries 6 is out of range; use 0 to 5"),
        (RouteOptions(max_retries=-1), "Retries -1 is out of range"),
    ]:
        with pytest.raises(InvalidInput, match=message), sessions.begin() as s:
            preferences.save_route(
                s,
                user_id=user.id,
                profile=None,
                models=[GPT],
                known_model=lambda m: True,
                actor="pat",
                now=utc_now(),
                options=options,
            )
        # Every path that saves a route checks, not only the settings page's.
        with pytest.raises(InvalidInput, match=message), sessions.begin() as s:
            routes.set_route(
                s,
                scope="org",
                scope_id=ORG_OWNER_ID,
                models=[GPT],
                known_model=lambda m: True,
                actor="cli",
                now=utc_now(),
                options=options,
            )
    with pytest.raises(InvalidInput, match="at least one model"), sessions.begin() as s:
        preferences.save_route(
            s,
            user_id=user.id,
            profile=None,
            models=[],
            known_model=lambda m: True,
            actor="pat",
            now=utc_now(),
        )
    with pytest.raises(InvalidInput, match="Unknown model"), sessions.begin() as s:
        preferences.save_route(
            s,
            user_id=user.id,
            profile=None,
            models=["no/such-model"],
            known_model=lambda m: False,
            actor="pat",
            now=utc_now(),
        )
    with sessions() as s:
        assert s.scalar(select(RouteRow)) is None


def test_shared_routes_are_org_and_team_only_listed_org_first_and_described(sessions):
    add_user(sessions, "mia", "member", team="Red")
    now = utc_now()
    with sessions.begin() as s:
        red = auth.list_teams(s)[0][0]
        with pytest.raises(InvalidInput, match="users set their own"):
            shared_routes.save_shared_route(
                s,
                scope="user",
                scope_id=1,
                task="",
                models=[MINI],
                options=RouteOptions(),
                known_model=lambda m: True,
                actor="root",
                now=now,
            )
        shared_routes.save_shared_route(
            s,
            scope="team",
            scope_id=red,
            task="Code",
            models=[GPT, MINI],
            options=RouteOptions(auto_fallback=False, provider_order=("openai",)),
            known_model=lambda m: True,
            actor="root",
            now=now,
        )
        shared_routes.save_shared_route(
            s,
            scope="org",
            scope_id=999,
            task="",
            models=[MINI],
            options=RouteOptions(),
            known_model=lambda m: True,
            actor="root",
            now=now,
        )
        routes.set_route(
            s,
            scope="user",
            scope_id=1,
            models=[HAIKU],
            known_model=lambda m: True,
            actor="mia",
            now=now,
        )
    with sessions() as s:
        listed = shared_routes.list_shared_routes(s, {red: "Red"})
    assert [(r.owner, r.scope_id, r.task, r.models) for r in listed] == [
        ("Organisation", ORG_OWNER_ID, "", (MINI,)),
        ("Team Red", red, "code", (GPT, MINI)),
    ]
    assert shared_routes.describe_options(listed[0].options) == "defaults"
    assert shared_routes.describe_options(listed[1].options) == "first model only, prefers openai"


def test_default_model_keeps_the_fallbacks_and_later_save_wins(sessions):
    user = add_user(sessions, "pat")
    with sessions.begin() as s:
        preferences.save_route(
            s,
            user_id=user.id,
            profile=None,
            models=[GPT, HAIKU],
            known_model=lambda m: True,
            actor="pat",
            now=utc_now(),
        )
    with sessions.begin() as s:
        chain = preferences.save_default_model(
            s,
            user_id=user.id,
            profile=None,
            model=MINI,
            known_model=lambda m: True,
            actor="pat",
            now=utc_now(),
        )
    assert chain == (MINI, GPT, HAIKU)
    with sessions.begin() as s:  # a second editor saves later: their chain wins
        preferences.save_route(
            s,
            user_id=user.id,
            profile=None,
            models=[HAIKU],
            known_model=lambda m: True,
            actor="other-tab",
            now=utc_now(),
        )
    with sessions() as s:
        saved = preferences.routes_for(s, user.id, None)[""]
        audited = s.scalars(select(AuditEntry.actor).where(AuditEntry.action == "route.set"))
        assert saved.models == (HAIKU,)
        assert list(audited) == ["pat", "pat", "other-tab"]


def test_preferring_a_provider_without_a_key_is_refused_and_recorded(sessions):
    user = add_user(sessions, "pat")
    caller = Caller(user.id, user.username, "member")
    with sessions.begin() as s:
        preferences.save_route(
            s,
            user_id=user.id,
            profile=None,
            models=[GPT],
            known_model=lambda m: True,
            actor="pat",
            now=utc_now(),
        )
    usable = {"openai": True, "anthropic": False}
    with pytest.raises(InvalidInput, match="No usable key for anthropic"):
        preferences.save_provider_order(
            sessions,
            caller=caller,
            profile=None,
            order=["openai", "anthropic"],
            usable=usable,
            actor="pat",
            now=utc_now(),
        )
    with sessions() as s:
        [refusal] = s.scalars(select(PreferenceRefusal)).all()
        assert (refusal.username, refusal.provider) == ("pat", "anthropic")
        assert preferences.routes_for(s, user.id, None)[""].options.provider_order == ()
    preferences.save_provider_order(
        sessions,
        caller=caller,
        profile=None,
        order=["openai"],
        usable=usable,
        actor="pat",
        now=utc_now(),
    )
    with sessions() as s:
        assert preferences.routes_for(s, user.id, None)[""].options.provider_order == ("openai",)


# --- recommendations -------------------------------------------------------------------------


def test_recommendations_use_capabilities_ratings_and_success(rig):
    models = rig.catalog.models()
    [code] = recommend.recommend("code", models, stats={}, providers=["openai", "anthropic"])
    info = rig.catalog.get(code.model)
    assert info is not None and info.tools and (info.context_window or 0) >= 64_000
    assert "tool use" in code.reason and "no team ratings" in code.reason
    # A strong team rating and a clean record lift a model to the top, and the reason says so.
    stats = {MINI: ModelStats(MINI, 40, 40, 1.0, 500.0, 480, 120.0)}
    [chat] = recommend.recommend(
        "chat", models, stats=stats, ratings={MINI: 1.0}, providers=["openai", "anthropic"]
    )
    assert chat.model == MINI
    assert "the team rates it 100%" in chat.reason and "100% of its last 40 calls" in chat.reason
    assert recommend.recommend("code", models, stats={}, providers=["nobody"]) == []


# --- the key Test ----------------------------------------------------------------------------


def _stream(rig):
    async def collect(request):
        return [event async for event in rig.gateway.stream(request)]

    def stream(request):
        import asyncio

        return asyncio.run(collect(request))

    return stream


def test_key_test_reports_success_invalid_key_and_missing_model(rig):
    caller = rig.caller
    model = keytest.pick_test_model("openai", rig.catalog, [])
    assert model == MINI
    ok = keytest.run_key_test(
        _stream(rig), keytest.key_test_request(caller, model, "env"), "openai"
    )
    assert ok.ok and "The key works" in ok.message and ok.latency_ms >= 0
    assert rig.openai.requests("gpt-4o-mini")[-1].body["max_tokens"] == 1

    rig.openai.accepted_keys = frozenset({"sk-some-other-key"})
    bad = keytest.run_key_test(
        _stream(rig), keytest.key_test_request(caller, model, "env"), "openai"
    )
    assert not bad.ok and bad.message.startswith("Invalid key")
    rig.openai.accepted_keys = None

    rig.openai.script("gpt-4o-mini", Status(404))
    missing = keytest.run_key_test(
        _stream(rig), keytest.key_test_request(caller, model, "env"), "openai"
    )
    assert not missing.ok and missing.message.startswith("Model not found")


def test_key_test_says_no_network_when_the_provider_is_down(rig):
    rig.openai.down()
    result = keytest.run_key_test(
        _stream(rig), keytest.key_test_request(rig.caller, MINI, "env"), "openai"
    )
    assert not result.ok and result.message.startswith("No network")


def test_key_test_with_no_key_says_so(rig):
    result = keytest.run_key_test(
        _stream(rig), keytest.key_test_request(rig.caller, HAIKU, "own"), "anthropic"
    )
    assert not result.ok and "no key for anthropic" in result.message.lower()


# --- user administration ---------------------------------------------------------------------


def test_last_admin_cannot_be_demoted_or_deactivated(sessions):
    add_user(sessions, "root", "admin")
    for change in (
        lambda s: auth.set_role(s, username="root", role="member", actor="root", now=utc_now()),
        lambda s: auth.set_active(s, username="root", active=False, actor="root", now=utc_now()),
    ):
        with pytest.raises(Conflict, match="last active admin"), sessions.begin() as s:
            change(s)
    with sessions() as s:
        assert auth.get_user(s, "root").role == "admin" and auth.get_user(s, "root").active
    add_user(sessions, "second", "admin")
    with sessions.begin() as s:
        auth.set_role(s, username="root", role="manager", actor="second", now=utc_now())
        auth.set_team(s, username="root", team="Ops", actor="second", now=utc_now())
    with sessions() as s:
        root = auth.get_user(s, "root")
        assert (root.role, root.team) == ("manager", "Ops")


def test_password_reset_and_change(sessions):
    add_user(sessions, "pat")
    now = utc_now()
    with sessions.begin() as s:
        auth.reset_password(
            s,
            username="pat",
            new_password="a-brand-new-secret",
            actor="root",
            now=now,
            rounds=TEST_ROUNDS,
        )
    assert auth.verify_login(sessions, "pat", "a-brand-new-secret", now).username == "pat"
    with pytest.raises(AuthenticationFailed), sessions.begin() as s:
        auth.change_password(
            s, username="pat", current=PASSWORD, new_password="x" * 12, now=now, rounds=TEST_ROUNDS
        )
    with pytest.raises(InvalidInput, match="too short"), sessions.begin() as s:
        auth.change_password(
            s,
            username="pat",
            current="a-brand-new-secret",
            new_password="short",
            now=now,
            rounds=TEST_ROUNDS,
        )
    with sessions.begin() as s:
        auth.change_password(
            s,
            username="pat",
            current="a-brand-new-secret",
            new_password="another-good-secret",
            now=now,
            rounds=TEST_ROUNDS,
        )
    assert auth.verify_login(sessions, "pat", "another-good-secret", now).username == "pat"


# --- import-env ------------------------------------------------------------------------------


def test_import_env_cli_imports_keys_and_default_model(sessions, monkeypatch):
    secret = "sk-env-imported-key-9876"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    for name in ("GEMINI_API_KEY", "MISTRAL_API_KEY", "GROQ_API_KEY", "XAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    code, out, err = run_cli("import-env", "--model", "gpt-4o")
    assert (code, err) == (0, "")
    assert "Imported the openai key from OPENAI_API_KEY" in out
    assert "default model to openai/gpt-4o." in out
    assert secret not in out
    with sessions() as s:
        [stored] = keys.list_keys(s, "org", ORG_OWNER_ID)
        assert stored.provider == "openai" and stored.masked.endswith("9876")
        route = routes.get_route(s, scope="org", scope_id=ORG_OWNER_ID)
        assert route is not None and route.models == ["openai/gpt-4o"]
        assert secret.encode() not in s.scalar(select(ApiKey.ciphertext))
    # Again: existing org settings are kept unless --replace.
    code, out, _ = run_cli("import-env", "--model", "openai/gpt-4o-mini")
    assert code == 0 and "Skipped openai" in out and "Skipped route" in out
    assert run_cli("route", "set", "--org", "--total-timeout", "42", "--retries", "0")[0] == 0
    code, out, _ = run_cli("import-env", "--model", "openai/gpt-4o-mini", "--replace")
    assert code == 0 and "default model to openai/gpt-4o-mini" in out
    with sessions() as s:  # a new default model keeps the route's options
        route = routes.get_route(s, scope="org", scope_id=ORG_OWNER_ID)
        assert route is not None and route.models == ["openai/gpt-4o-mini", "openai/gpt-4o"]
        assert (route.options["total_timeout_s"], route.options["max_retries"]) == (42, 0)


def test_import_env_refuses_bad_input_and_changes_nothing(sessions, monkeypatch):
    for name in list(__import__("os").environ):
        if name.endswith("_API_KEY"):
            monkeypatch.delenv(name)
    code, _, err = run_cli("import-env")
    assert code == 2 and "No provider key was found" in err
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-imported-key-9876")
    code, _, err = run_cli("import-env", "--model", "no-such/model")
    assert code == 2 and "Unknown model" in err
    with sessions() as s:
        assert keys.list_keys(s, "org", ORG_OWNER_ID) == []


def test_team_budget_listing_for_managers(sessions):
    from core.money import budgets

    lead = add_user(sessions, "lead", "manager", team="Red")
    mate = add_user(sessions, "mate", "member", team="Red")
    outsider = add_user(sessions, "out", "member", team="Blue")
    now = utc_now()
    with sessions.begin() as s:
        red = auth.caller_for(s, lead.id).team_id
        budgets.set_budget(s, "team", str(red), 50_000_000, True, "root", now)
        budgets.set_budget(s, "user", str(mate.id), 5_000_000, False, "root", now)
        budgets.set_budget(s, "user", str(outsider.id), 7_000_000, True, "root", now)
    with sessions() as s:
        seen = budgets.budgets_for_team(s, red, now + timedelta(seconds=1))
    assert [b.label for b in seen] == ["user mate", "team Red"]


def test_recorded_requests_keep_their_profile_in_estimate_cache_keys(rig):
    # Two profiles with different routes must not share the gateway's policy cache entry.
    from core.settings import profiles

    with rig.sessions.begin() as s:
        a = profiles.create_profile(
            s, user_id=rig.user.id, name="A", keys_choice="auto", actor="t", now=utc_now()
        )
        profiles.set_profile_route(
            s, profile_id=a.id, models=[MINI], known_model=lambda m: True, actor="t", now=utc_now()
        )
    rig.set_route([GPT])
    base = rig.request("auto")
    assert (
        rig.gateway.estimate(replace(base, profile="A")).high_micros
        != rig.gateway.estimate(base).high_micros
    )


def test_team_votes_become_per_task_ratings_for_recommendations(sessions):
    from tests.support import compare as cmp

    owner = add_user(sessions, "rater", "member", team="writers")
    who = cmp.caller(sessions, owner.id)
    sid = cmp.new_session(sessions, who, [MINI, HAIKU], task="outline")
    for _ in range(3):
        rid = cmp.add_round(sessions, who, sid, [cmp.answer(MINI), cmp.answer(HAIKU)])
        cmp.vote(sessions, who, rid, "best", MINI)
    with sessions() as s:
        ratings = recommend.team_ratings(s, who.team_id)
    assert ratings.for_task("outline")[MINI] > ratings.for_task("outline")[HAIKU]
    # No code votes: the team's overall ratings.
    assert ratings.for_task("code") == ratings.overall == ratings.for_task(" Outline ")
