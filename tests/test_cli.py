"""The `switchboard` command: in-process for behaviour, and as a real subprocess for the entry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.db import head_revision
from tests.conftest import PASSWORD
from tests.support.cli import run_cli

ROOT = Path(__file__).resolve().parent.parent


run = run_cli


def test_init_is_idempotent(isolated_env):
    code, out, _ = run("init")
    assert code == 0 and "Database ready" in out and f"revision {head_revision()}" in out
    assert run("init")[0] == 0


def test_user_add_and_list(isolated_env):
    code, out, err = run("user", "add", "alice", "--role", "admin", "--team", "Ops",
                         "--name", "Alice A", "--email", "a@example.com", stdin=PASSWORD + "\n")
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
        input=PASSWORD + "\n", capture_output=True, text=True, cwd=ROOT, env=env, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    script = Path(sys.executable).with_name("switchboard")
    proc = subprocess.run(
        [str(script), "user", "add", "carol", "--role", "member"],
        input=PASSWORD + "\n", capture_output=True, text=True, cwd=ROOT, env=env, timeout=60,
    )
    assert proc.returncode == 2
    assert "already exists" in proc.stderr and "Traceback" not in proc.stderr
    assert PASSWORD not in proc.stdout + proc.stderr


def test_route_set_and_list(isolated_env):
    assert run("user", "add", "ann", "--role", "member", "--team", "Red", stdin=PASSWORD)[0] == 0
    code, out, _ = run("route", "set", "--org", "--model", "openai/gpt-4o",
                       "--fallback", "anthropic/claude-3-haiku-20240307")
    assert code == 0 and "openai/gpt-4o -> anthropic/claude-3-haiku-20240307" in out
    assert run("route", "set", "--team", "Red", "--model", "openai/gpt-4o-mini",
               "--task", "code", "--cost-optimised")[0] == 0
    assert run("route", "set", "--user", "ann", "--model", "openai/gpt-4o")[0] == 0
    code, out, _ = run("route", "list")
    lines = out.splitlines()
    assert code == 0 and any(ln.startswith("team:Red") and "code" in ln and "yes" in ln
                             for ln in lines)
    assert any(ln.startswith("user:ann") for ln in lines)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("route", "set", "--org", "--model", "openai/gpt-99"), "Unknown model 'openai/gpt-99'"),
        (("route", "set", "--team", "Nope", "--model", "openai/gpt-4o"), "No team named 'Nope'"),
        (("route", "set", "--user", "ghost", "--model", "openai/gpt-4o"), "No user named"),
        (("route", "set", "--org", "--model", "openai/gpt-4o", "--fallback", "openai/gpt-4o"),
         "appears twice"),
    ],
)
def test_route_set_bad_input(isolated_env, argv, fragment):
    code, _, err = run(*argv)
    assert code == 2 and fragment in err
