"""Profiles: their routes win over the user's, their keys choice picks the key, the ledger
records the profile, and an unknown profile is refused."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from core.accounts import keys
from core.clock import utc_now
from core.errors import Conflict, InvalidInput, NoKey
from core.request import Caller
from core.settings import profiles, routes
from core.store.tables import ORG_OWNER_ID, Profile, ProfileRoute
from tests.conftest import add_user
from tests.gateway_support import GPT, HAIKU, MINI, OPENAI_KEY

OWN_KEY = "sk-proj-own-key-aaaa1111"
TEAM_KEY = "sk-proj-team-key-bbbb2222"


def _profile(sessions, user_id: int, name: str, keys_choice: str = "auto") -> profiles.ProfileInfo:
    with sessions.begin() as s:
        return profiles.create_profile(
            s, user_id=user_id, name=name, keys_choice=keys_choice, actor="test", now=utc_now()
        )


def _route(sessions, *, user_id=None, profile_id=None, models, task="") -> None:
    with sessions.begin() as s:
        if profile_id is not None:
            profiles.set_profile_route(
                s,
                profile_id=profile_id,
                models=models,
                known_model=lambda m: True,
                actor="t",
                now=utc_now(),
                task=task,
            )
        else:
            routes.set_route(
                s,
                scope="user",
                scope_id=user_id,
                models=models,
                known_model=lambda m: True,
                actor="t",
                now=utc_now(),
                task=task,
            )


def _resolve(sessions, caller, profile=None, task=""):
    with sessions() as s:
        return routes.resolve(s, caller, model="auto", fallbacks=None, task=task, profile=profile)


def test_profile_routes_win_over_the_users(sessions):
    user = add_user(sessions, "pat")
    caller = Caller(user.id, user.username, "member")
    work = _profile(sessions, user.id, "Work")
    _route(sessions, user_id=user.id, models=[GPT])
    _route(sessions, user_id=user.id, models=[HAIKU], task="code")
    _route(sessions, profile_id=work.id, models=[MINI])

    assert _resolve(sessions, caller).chain == (GPT,)
    got = _resolve(sessions, caller, "Work")
    assert (got.chain, got.source, got.profile) == ((MINI,), "profile", "Work")
    # A task route is more specific than any default, the profile's included...
    assert _resolve(sessions, caller, "Work", task="code").chain == (HAIKU,)
    # ...but the profile's own route for the task beats the user's.
    _route(sessions, profile_id=work.id, models=[GPT, MINI], task="code")
    got = _resolve(sessions, caller, "Work", task="code")
    assert (got.chain, got.source) == ((GPT, MINI), "task:profile")


def test_unknown_or_someone_elses_profile_is_refused(sessions):
    owner = add_user(sessions, "owner")
    other = add_user(sessions, "other")
    _profile(sessions, owner.id, "Secret")
    _route(sessions, user_id=other.id, models=[GPT])
    with pytest.raises(InvalidInput, match="no profile named 'Secret'"):
        _resolve(sessions, Caller(other.id, other.username, "member"), "Secret")
    with pytest.raises(InvalidInput, match="no profile named 'Nope'"):
        _resolve(sessions, Caller(owner.id, owner.username, "member"), "Nope")


def test_profile_names_are_validated_and_unique_per_user(sessions):
    user = add_user(sessions, "pat")
    _profile(sessions, user.id, "Work")
    with pytest.raises(Conflict):
        _profile(sessions, user.id, "Work")
    with pytest.raises(InvalidInput):
        _profile(sessions, user.id, "  ")
    with pytest.raises(InvalidInput, match="keys choice"):
        _profile(sessions, user.id, "Home", keys_choice="everything")
    other = add_user(sessions, "sam")
    _profile(sessions, other.id, "Work")  # another user may use the same name


def test_profile_route_options_are_range_checked(sessions):
    user = add_user(sessions, "pat")
    work = _profile(sessions, user.id, "Work")
    with pytest.raises(InvalidInput, match="Retries 9 is out of range"), sessions.begin() as s:
        profiles.set_profile_route(
            s,
            profile_id=work.id,
            models=[GPT],
            known_model=lambda m: True,
            actor="t",
            now=utc_now(),
            options=routes.RouteOptions(max_retries=9),
        )
    with sessions() as s:
        assert s.scalar(select(ProfileRoute)) is None


def test_deleting_a_profile_removes_its_routes(sessions):
    user = add_user(sessions, "pat")
    work = _profile(sessions, user.id, "Work")
    _route(sessions, profile_id=work.id, models=[GPT])
    with sessions.begin() as s:
        profiles.delete_profile(s, user_id=user.id, name="Work", actor="t", now=utc_now())
    with sessions() as s:
        assert s.scalar(select(Profile)) is None
        assert s.scalar(select(ProfileRoute)) is None


def _key(rig, kind: str, owner_id: int, secret: str) -> None:
    with rig.sessions.begin() as s:
        keys.set_key(
            s,
            rig.cipher,
            owner_kind=kind,
            owner_id=owner_id,
            provider="openai",
            secret=secret,
            actor="test",
            now=utc_now(),
            known_providers=rig.catalog.providers(),
        )


async def test_keys_choice_decides_which_key_pays_and_the_ledger_records_the_profile(rig):
    member = add_user(rig.sessions, "tess", "member", team="Blue")
    caller = Caller(member.id, member.username, "member", 1)
    _profile(rig.sessions, member.id, "Personal", "own")
    _profile(rig.sessions, member.id, "Work", "shared")
    _key(rig, "user", member.id, OWN_KEY)
    _key(rig, "team", 1, TEAM_KEY)

    def ask(profile):
        return replace(rig.request(GPT, fallbacks=()), caller=caller, profile=profile)

    await rig.gateway.complete(ask(None))
    await rig.gateway.complete(ask("Personal"))
    await rig.gateway.complete(ask("Work"))
    used = [r.key_last4 for r in rig.openai.requests("gpt-4o")]
    assert used == [OWN_KEY[-4:], OWN_KEY[-4:], TEAM_KEY[-4:]]
    rows = rig.rows()
    assert [r.profile for r in rows] == [None, "Personal", "Work"]
    sources = [rig.attempts(r.id)[0]["key_source"] for r in rows]
    assert sources == ["own", "own", "team"]


async def test_own_keys_profile_never_falls_back_to_shared_keys(rig):
    member = add_user(rig.sessions, "solo")
    caller = Caller(member.id, member.username, "member")
    _profile(rig.sessions, member.id, "Personal", "own")
    # The environment has an OpenAI key (rig), but this profile may only use the user's own.
    with pytest.raises(NoKey):
        await rig.gateway.complete(
            replace(rig.request(GPT, fallbacks=()), caller=caller, profile="Personal")
        )
    assert rig.openai.count() == 0
    [row] = rig.rows()
    assert (row.profile, row.status) == ("Personal", "no-key")


async def test_gateway_refuses_an_unknown_profile_with_a_clear_message(rig):
    with pytest.raises(InvalidInput, match="no profile named 'Ghost'"):
        await rig.gateway.complete(replace(rig.request(GPT), profile="Ghost"))
    assert rig.openai.count() == 0


def test_estimate_honours_the_profile_route(rig):
    with rig.sessions.begin() as s:
        routes.set_route(
            s,
            scope="org",
            scope_id=ORG_OWNER_ID,
            models=[GPT],
            known_model=lambda m: True,
            actor="t",
            now=utc_now(),
        )
    work = _profile(rig.sessions, rig.user.id, "Work")
    _route(rig.sessions, profile_id=work.id, models=[MINI])
    plain = rig.gateway.estimate(rig.request("auto"))
    cheap = rig.gateway.estimate(replace(rig.request("auto"), profile="Work"))
    assert cheap.high_micros is not None and plain.high_micros is not None
    assert cheap.high_micros < plain.high_micros  # gpt-4o-mini is far cheaper than gpt-4o


async def test_key_sources_on_the_request_narrow_the_key(rig):
    _key(rig, "user", rig.user.id, OWN_KEY)
    await rig.gateway.complete(replace(rig.request(GPT, fallbacks=()), key_sources=("env",)))
    assert rig.openai.requests("gpt-4o")[-1].key_last4 == OPENAI_KEY[-4:]
    [row] = rig.rows()
    assert rig.attempts(row.id)[0]["key_source"] == "env"
