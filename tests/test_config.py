"""Settings and the sign-in cookie key rules."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import config
from core.config import load_settings, resolve_cookie_key
from core.errors import ConfigError

STRONG = "k" * 20 + "-0123456789abcdef"


@pytest.mark.parametrize("key", ["", "some_key", "changeme", "short-key"])
def test_production_refuses_missing_default_or_short_keys(monkeypatch, key):
    monkeypatch.setenv("SWITCHBOARD_MODE", "production")
    if key:
        monkeypatch.setenv("SWITCHBOARD_COOKIE_KEY", key)
    with pytest.raises(ConfigError, match="SWITCHBOARD_COOKIE_KEY"):
        resolve_cookie_key(load_settings())


def test_production_accepts_a_strong_key(monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_MODE", "production")
    monkeypatch.setenv("SWITCHBOARD_COOKIE_KEY", STRONG)
    assert resolve_cookie_key(load_settings()) == (STRONG, None)


def test_development_generates_a_private_key_once(isolated_env):
    key, created = resolve_cookie_key(load_settings())
    assert created == isolated_env / "cookie_key" and len(key) >= 32
    assert stat.S_IMODE(created.stat().st_mode) == 0o600
    again, created_again = resolve_cookie_key(load_settings())
    assert (again, created_again) == (key, None)


def test_development_still_refuses_a_weak_explicit_key(monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_COOKIE_KEY", "some_key")
    with pytest.raises(ConfigError):
        resolve_cookie_key(load_settings())


def test_bad_mode_is_a_clear_config_error(monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_MODE", "staging")
    with pytest.raises(ConfigError, match="SWITCHBOARD_MODE is invalid"):
        load_settings()


def test_secrets_toml_table_is_read_and_env_wins(tmp_path, monkeypatch):
    secrets = tmp_path / ".streamlit" / "secrets.toml"
    secrets.parent.mkdir()
    secrets.write_text('[switchboard]\ndb_url = "sqlite:///from-toml.db"\nlog_level = "DEBUG"\n')
    monkeypatch.setattr(config, "PROJECT_ROOT", tmp_path)
    monkeypatch.delenv("SWITCHBOARD_DB_URL")
    settings = load_settings()
    assert settings.database_url == "sqlite:///from-toml.db" and settings.log_level == "DEBUG"
    monkeypatch.setenv("SWITCHBOARD_DB_URL", "sqlite:///from-env.db")
    assert load_settings().database_url == "sqlite:///from-env.db"


def test_app_refuses_to_start_without_cookie_key_in_production(monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_MODE", "production")
    at = AppTest.from_file("../app.py", default_timeout=30).run()
    assert not at.exception
    assert at.title[0].value == "Switchboard cannot start"
    assert "SWITCHBOARD_COOKIE_KEY" in at.error[0].value
    assert not at.text_input  # no sign-in form


def test_app_explains_an_unreachable_database(monkeypatch):
    monkeypatch.setenv(
        "SWITCHBOARD_DB_URL", "postgresql://sb:hunter2-secret@127.0.0.1:9/sb?connect_timeout=2"
    )
    at = AppTest.from_file("../app.py", default_timeout=30).run()
    assert not at.exception
    assert "Cannot reach the database" in at.error[0].value
    assert "hunter2-secret" not in at.error[0].value


def test_the_process_refuses_to_start_without_cookie_key_in_production(isolated_env):
    """Not a dashboard error page beside a working /v1: the whole process stops, and says why."""
    env = {k: v for k, v in os.environ.items() if k != "SWITCHBOARD_COOKIE_KEY"}
    env["SWITCHBOARD_MODE"] = "production"
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = subprocess.run(
        [sys.executable, "-m", "streamlit", "run", "app.py", f"--server.port={port}"],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=110,  # it exits once app.py is imported; a hang is the failure
    )
    assert done.returncode == 2
    assert "Switchboard cannot start: SWITCHBOARD_COOKIE_KEY is missing" in done.stderr
    assert not (isolated_env / "cookie_key").exists()
