"""The `switchboard` command: in-process for behaviour, and as a real subprocess for the entry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from core.errors import UpstreamTimeout
from core.settings.routes import RouteOptions
from core.store.db import head_revision
from core.store.tables import RouteRow
from tests.conftest import PASSWORD
from tests.fakes import ContentFilter, Hang, Status
from tests.gateway_support import GPT, HAIKU, MINI
from tests.support.cli import run_cli

ROOT = Path(__file__).resolve().parent.parent


run = run_cli


def test_init_is_idempotent(isolated_env):
    code, out, _ = run("init")
    assert code == 0 and "Database ready" in out and f"revision {head_revision()}" in out
    assert run("init")[0] == 0


def test_user_add_and_list(isolated_env):
    code, out, err = run(
        "user",
        "add",
        "alice",
        "--role",
        "admin",
        "--team",
        "Ops",
        "--name",
        "Alice A",
        "--email",
        "a@example.com",
        stdin=PASSWORD + "\n",
    )
    assert (code, err) == (0, "")
    assert "Created admin 'alice' in team 'Ops'." in out
    code, out, _ = run("user", "list")
    assert code == 0
    line = next(ln for ln in out.splitlines() if ln.startswith("alice"))
    assert "Alice A" in line and "admin" in line and "Ops" in line and "active" in line
    assert PASSWORD not in out


@pytest.mark.parametrize(
    ("argv", "stdin", "fragment"),
    [
        (("user", "add", "bob", "--role", "owner"), PASSWORD, "Unknown role 'owner'"),
        (("user", "add", "bob", "--role", "member"), "\n", "password is empty"),
        (("user", "add", "bob", "--role", "member"), "", "password is empty"),
        (("user", "add", "bob", "--role", "member"), "abc\n", "too short"),
        (("user", "add", "Bad Name", "--role", "member"), PASSWORD, "not allowed"),
        (("models", "--provider", "nope"), "", "Unknown provider 'nope'"),
    ],
)
def test_bad_input_gets_one_clear_line(isolated_env, argv, stdin, fragment):
    code, _, err = run(*argv, stdin=stdin)
    assert code == 2
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err


def test_duplicate_user_is_refused(isolated_env):
    assert run("user", "add", "bob", "--role", "member", stdin=PASSWORD)[0] == 0
    code, _, err = run("user", "add", "bob", "--role", "member", stdin=PASSWORD)
    assert code == 2 and "already exists" in err


def test_user_list_when_empty_says_how_to_start(isolated_env):
    code, out, _ = run("user", "list")
    assert code == 0 and "switchboard user add" in out


def test_malformed_db_url(isolated_env, monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_DB_URL", "definitely not a url")
    code, _, err = run("init")
    assert code == 2 and "SWITCHBOARD_DB_URL is malformed" in err


def test_models_json_has_exact_prices_and_unpriced_flag(isolated_env):
    code, out, _ = run("models", "--provider", "openai", "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["price_version"].startswith("litellm-1.90.7+")
    by_id = {m["id"]: m for m in payload["models"]}
    assert by_id["openai/gpt-4o"]["input_price_per_1m"] == "2.5"
    assert {m["provider"] for m in payload["models"]} == {"openai"}
    assert all(m["priced"] == (m["input_price_per_1m"] is not None) for m in payload["models"])


def test_models_table(isolated_env):
    code, out, _ = run("models", "--provider", "anthropic")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["MODEL", "TIER", "IN"]
    assert "anthropic/" in out and "prices from litellm-" in out


def test_console_entry_runs_as_a_process(isolated_env):
    """`python -m core` and the installed `switchboard` script, with no traceback on errors."""
    env = {**os.environ}
    proc = subprocess.run(
        [sys.executable, "-m", "core", "user", "add", "carol", "--role", "member"],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    script = Path(sys.executable).with_name("switchboard")
    proc = subprocess.run(
        [str(script), "user", "add", "carol", "--role", "member"],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "already exists" in proc.stderr and "Traceback" not in proc.stderr
    assert PASSWORD not in proc.stdout + proc.stderr


def test_route_set_and_list(isolated_env):
    assert run("user", "add", "ann", "--role", "member", "--team", "Red", stdin=PASSWORD)[0] == 0
    code, out, _ = run(
        "route",
        "set",
        "--org",
        "--model",
        "openai/gpt-4o",
        "--fallback",
        "anthropic/claude-3-haiku-20240307",
    )
    assert code == 0 and "openai/gpt-4o -> anthropic/claude-3-haiku-20240307" in out
    assert (
        run(
            "route",
            "set",
            "--team",
            "Red",
            "--model",
            "openai/gpt-4o-mini",
            "--task",
            "code",
            "--cost-optimised",
        )[0]
        == 0
    )
    assert run("route", "set", "--user", "ann", "--model", "openai/gpt-4o")[0] == 0
    code, out, _ = run("route", "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["SCOPE", "TASK", "CHAIN", "OPTIONS"]
    assert any(
        ln.startswith("team:Red") and "code" in ln and ln.endswith("--cost-optimised")
        for ln in lines
    )
    assert any(ln.startswith("user:ann") for ln in lines)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("route", "set", "--org", "--model", "openai/gpt-99"), "Unknown model 'openai/gpt-99'"),
        (("route", "set", "--team", "Nope", "--model", "openai/gpt-4o"), "No team named 'Nope'"),
        (("route", "set", "--user", "ghost", "--model", "openai/gpt-4o"), "No user named"),
        (
            ("route", "set", "--org", "--model", "openai/gpt-4o", "--fallback", "openai/gpt-4o"),
            "appears twice",
        ),
    ],
)
def test_route_set_bad_input(isolated_env, argv, fragment):
    code, _, err = run(*argv)
    assert code == 2 and fragment in err


# --- route options -----------------------------------------------------------------------


def _org_route(sessions) -> tuple[list[str], RouteOptions, object]:
    with sessions() as s:
        row = s.scalar(select(RouteRow).where(RouteRow.scope == "org"))
        assert row is not None
        return list(row.models), RouteOptions.from_json(row.options), row.updated_at


def test_route_options_are_saved_shown_and_survive_a_new_chain(sessions):
    code, out, err = run(
        "route",
        "set",
        "--org",
        "--model",
        GPT,
        "--fallback",
        HAIKU,
        "--total-timeout",
        "30",
        "--first-token-timeout",
        "4.5",
        "--retries",
        "0",
        "--content-failover",
        "--cost-optimised",
        "--weights",
        "price=0.7,latency=0.1",
        "--provider-order",
        "anthropic",
        "--temperature",
        "0.3",
    )
    assert (code, err) == (0, "")
    assert "Options: --cost-optimised --content-failover --first-token-timeout 4.5" in out
    models, saved, _ = _org_route(sessions)
    assert models == [GPT, HAIKU]
    assert (saved.total_timeout_s, saved.first_token_timeout_s, saved.max_retries) == (30, 4.5, 0)
    assert saved.content_refusal_failover and saved.cost_optimised
    assert (saved.weights.price, saved.weights.latency, saved.weights.quality) == (0.7, 0.1, 0.2)
    assert (saved.provider_order, saved.temperature) == (("anthropic",), 0.3)
    assert saved.connect_timeout_s == RouteOptions().connect_timeout_s  # untouched: default

    # Only the chain changes: every saved option stays (this used to reset them all).
    assert run("route", "set", "--org", "--model", GPT, "--fallback", f"{MINI},{HAIKU}")[0] == 0
    models, after, _ = _org_route(sessions)
    assert models == [GPT, MINI, HAIKU] and after == saved

    # Only one option changes: the chain and the other options stay.
    code, out, _ = run(
        "route",
        "set",
        "--org",
        "--no-content-failover",
        "--retries",
        "3",
        "--temperature",
        "default",
    )
    assert code == 0 and f"{GPT} -> {MINI} -> {HAIKU}" in out
    models, after, _ = _org_route(sessions)
    assert models == [GPT, MINI, HAIKU]
    assert after == RouteOptions.from_json(
        {
            **saved.to_json(),
            "content_refusal_failover": False,
            "max_retries": 3,
            "temperature": None,
        }
    )

    code, out, _ = run("route", "list")
    [org] = [ln for ln in out.splitlines() if ln.startswith("org")]
    assert "--total-timeout 30 --retries 3 --weights price=0.7,latency=0.1," in org
    assert "--content-failover" not in org and "--temperature" not in org

    code, out, _ = run("route", "set", "--org", "--reset-options")
    assert code == 0 and "Options: defaults." in out
    assert _org_route(sessions)[1] == RouteOptions()


def test_options_saved_elsewhere_survive_route_set(sessions):
    """Options the settings page saves (here: max tokens) are kept by the CLI too."""
    from core.clock import utc_now
    from core.settings import routes
    from core.store.tables import ORG_OWNER_ID

    with sessions.begin() as s:
        routes.set_route(
            s,
            scope="org",
            scope_id=ORG_OWNER_ID,
            models=[GPT],
            known_model=lambda m: True,
            actor="page",
            now=utc_now(),
            options=RouteOptions(max_tokens=777, idle_timeout_s=2.0),
        )
    assert run("route", "set", "--org", "--model", MINI, "--idle-timeout", "3")[0] == 0
    models, saved, _ = _org_route(sessions)
    assert models == [MINI] and (saved.max_tokens, saved.idle_timeout_s) == (777, 3.0)


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (("--total-timeout", "0"), "The total timeout 0 s is out of range; use more than 0"),
        (("--connect-timeout", "-1"), "The connect timeout -1 s is out of range"),
        (("--first-token-timeout", "3601"), "at most 3600 seconds"),
        (("--idle-timeout", "soon"), "--idle-timeout 'soon' is not a number"),
        (("--total-timeout", "inf"), "--total-timeout 'inf' is not a finite number"),
        (("--retries", "6"), "Retries 6 is out of range; use 0 to 5"),
        (("--retries", "-1"), "Retries -1 is out of range"),
        (("--retries", "1.5"), "--retries '1.5' is not a whole number"),
        (("--weights", "speed=1"), "--weights 'speed=1' is not NAME=WEIGHT"),
        (("--weights", "price=-1"), "Weights must be from 0 to 1 each"),
        (("--weights", "price=2"), "Weights must be from 0 to 1 each"),
        (("--weights", "price=0,latency=0,quality=0,preference=0"), "at least one above zero"),
        (("--temperature", "3"), "Temperature 3.0 is out of range"),
        (("--max-tokens", "0"), "Max tokens 0 is out of range"),
        (("--provider-order", "openai,nope"), "unknown provider 'nope'"),
        (("--model", GPT, "--fallback", "openai/gpt-99"), "Unknown model 'openai/gpt-99'"),
        (("--fallback", HAIKU), "--fallback needs --model"),
        ((), "Nothing to change"),
        (("--task", "code", "--retries", "1"), "There is no task 'code' route"),
    ],
)
def test_bad_route_options_are_refused_and_change_nothing(sessions, flags, fragment):
    assert (
        run(
            "route",
            "set",
            "--org",
            "--model",
            GPT,
            "--fallback",
            HAIKU,
            "--total-timeout",
            "42",
            "--retries",
            "1",
        )[0]
        == 0
    )
    before = _org_route(sessions)
    code, out, err = run("route", "set", "--org", *flags)
    assert code == 2 and out == "" and fragment in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert _org_route(sessions) == before
    with sessions() as s:
        assert len(s.scalars(select(RouteRow)).all()) == 1


async def test_route_options_set_by_the_cli_are_used_by_the_gateway(rig):
    import time

    import litellm  # noqa: F401  (a first import takes seconds: keep it out of the 0.5 s)

    code, _, err = run(
        "route", "set", "--org", "--model", GPT, "--fallback", HAIKU, "--total-timeout", "0.5"
    )
    assert (code, err) == (0, "")
    rig.gateway.refresh()
    rig.openai.script("gpt-4o", Hang())
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout, match=r"no response within 0\.5s"):
        await rig.gateway.complete(rig.request("auto"))
    assert time.monotonic() - started < 3  # not the 10 s first-token / 300 s total defaults
    assert rig.anthropic.count() == 0  # the whole request's deadline had passed

    # Changing retries and content failover keeps the timeout, and both take effect.
    assert run("route", "set", "--org", "--retries", "0", "--content-failover")[0] == 0
    rig.gateway.refresh()
    rig.openai.script("gpt-4o", Status(503))
    done = await rig.gateway.complete(rig.request("auto"))
    assert done.summary.model == HAIKU and rig.openai.count("gpt-4o") == 2  # 1 + 0 retries
    rig.openai.script("gpt-4o", ContentFilter())
    done = await rig.gateway.complete(rig.request("auto"))
    assert done.summary.model == HAIKU  # the refusal failed over instead of being returned
