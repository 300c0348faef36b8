"""core.accounts.keys, the `key` and `secret` commands: storage, resolution order, no leaks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, select

from core.accounts import auth, keys, secrets
from core.accounts.secrets import Cipher, UndecryptableSecret
from core.config import load_settings
from core.errors import InvalidInput, NotFound
from core.request import Caller
from core.store import audit
from core.store.tables import ORG_OWNER_ID, ApiKey, Team
from tests.conftest import add_user
from tests.support.cli import run_cli

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
KNOWN = ("openai", "anthropic", "gemini", "corp-vllm")
OWN = "sk-own-0123456789abcdefghijklmnopqrstuv"
TEAM = "sk-team-0123456789abcdefghijklmnopqrst"
ORG = "sk-org9-0123456789abcdefghijklmnopqrst"
ENV = "sk-envv-0123456789abcdefghijklmnopqrst"
ALL_SECRETS = (OWN, TEAM, ORG, ENV)


@pytest.fixture
def cipher() -> Cipher:
    return Cipher([bytes(range(32))])


def put(sessions, cipher, kind, owner_id, secret, provider="openai"):
    with sessions.begin() as s:
        return keys.set_key(
            s,
            cipher,
            owner_kind=kind,
            owner_id=owner_id,
            provider=provider,
            secret=secret,
            actor="admin",
            now=T0,
            known_providers=KNOWN,
        )


def team_id(sessions, name):
    with sessions() as s:
        return s.scalar(select(Team.id).where(Team.name == name))


def caller_for(user, tid=None):
    return Caller(user_id=user.id, username=user.username, role=user.role, team_id=tid)


def test_set_list_replace_and_delete(sessions, cipher):
    alice = add_user(sessions, "alice")
    info = put(sessions, cipher, "user", alice.id, f"  {OWN}\n")
    assert (info.provider, info.owner_kind, info.masked) == ("openai", "user", "sk-…stuv")
    later = T0 + timedelta(hours=1)
    with sessions.begin() as s:
        keys.mark_key_auth_failed(s, s.scalar(select(ApiKey.id)), later)
    with sessions.begin() as s:
        replaced = keys.set_key(
            s,
            cipher,
            owner_kind="user",
            owner_id=alice.id,
            provider="openai",
            secret=TEAM,
            actor="alice",
            now=later,
            known_providers=KNOWN,
        )
    assert (replaced.created_at, replaced.updated_at) == (T0, later)
    assert replaced.last_auth_failure_at is None  # a new key starts clean
    with sessions() as s:
        assert [k.masked for k in keys.list_keys(s, "user", alice.id)] == ["sk-…qrst"]
        assert keys.list_keys(s, "org", ORG_OWNER_ID) == []
    with sessions.begin() as s:
        keys.delete_key(
            s, owner_kind="user", owner_id=alice.id, provider="openai", actor="alice", now=later
        )
    with sessions.begin() as s, pytest.raises(NotFound, match="switchboard key list"):
        keys.delete_key(
            s, owner_kind="user", owner_id=alice.id, provider="openai", actor="alice", now=later
        )
    with sessions() as s:
        actions = [e.action for e in audit.recent(s) if e.action.startswith("key.")]
        assert actions == ["key.delete", "key.set", "key.set"]


@pytest.mark.parametrize(
    ("secret", "provider", "kind", "owner", "error", "fragment"),
    [
        ("", "openai", "org", 0, InvalidInput, "empty"),
        (" \n ", "openai", "org", 0, InvalidInput, "empty"),
        ("sk-abc def-0123456789", "openai", "org", 0, InvalidInput, "spaces or line breaks"),
        ("sk-abc\ndef-0123456789", "openai", "org", 0, InvalidInput, "spaces or line breaks"),
        ("x" * 5000, "openai", "org", 0, InvalidInput, "too long"),
        (OWN, "nope", "org", 0, InvalidInput, "Unknown provider 'nope'"),
        (OWN, "openai", "org", 7, InvalidInput, "owner id 0"),
        (OWN, "openai", "user", 999, NotFound, "switchboard user list"),
        (OWN, "openai", "team", 999, NotFound, "switchboard user list"),
    ],
)
def test_set_key_refuses_bad_input_without_echoing(
    sessions, cipher, secret, provider, kind, owner, error, fragment
):
    with sessions.begin() as s, pytest.raises(error, match=fragment) as info:
        keys.set_key(
            s,
            cipher,
            owner_kind=kind,
            owner_id=owner,
            provider=provider,
            secret=secret,
            actor="t",
            now=T0,
            known_providers=KNOWN,
        )
    assert secret.strip() == "" or secret not in str(info.value)
    with sessions() as s:
        assert s.scalars(select(ApiKey)).all() == []


@pytest.mark.parametrize(
    ("provider", "secret", "fragment"),
    [
        ("openai", "sk-proj-0123456789abcdef", None),
        ("anthropic", "sk-ant-api03-0123456789", None),
        ("openrouter", "sk-or-v1-0123456789", None),
        ("gemini", "AIzaSyA0123456789", None),
        ("openai", "sk-ant-api03-0123456789", "looks like a key for anthropic"),
        ("openai", "sk-or-v1-0123456789", "looks like a key for openrouter"),
        ("anthropic", "sk-proj-0123456789", "looks like a key for openai"),
        ("gemini", "gsk_0123456789", "looks like a key for groq"),
        ("groq", "0123456789abcdef", "usually start with 'gsk_'"),
        ("openai", " sk-proj-0123456789\n", "were removed"),
    ],
)
def test_key_warnings(provider, secret, fragment):
    warnings = keys.key_warnings(provider, secret)
    if fragment is None:
        assert warnings == []
    else:
        assert any(fragment in w for w in warnings)
        assert not any(secret.strip() in w for w in warnings)


def test_resolution_order_own_team_org_env_none(sessions, cipher):
    alice = add_user(sessions, "alice", team="Red")
    bob = add_user(sessions, "bob", team="Blue")
    red = team_id(sessions, "Red")
    env = {"OPENAI_API_KEY": ENV}
    me = caller_for(alice, red)

    def resolve(caller=me, provider="openai", environ=env):
        with sessions() as s:
            return keys.resolve_key(s, cipher, caller, provider, environ)

    assert resolve(environ={}) is None
    assert (resolve().source, resolve().secret, resolve().key_id) == ("env", ENV, None)
    put(sessions, cipher, "org", ORG_OWNER_ID, ORG)
    assert (resolve().source, resolve().secret) == ("org", ORG)
    put(sessions, cipher, "team", red, TEAM)
    put(sessions, cipher, "user", bob.id, "sk-bob0-0123456789abcdefghijklmno")  # not ours
    assert (resolve().source, resolve().secret) == ("team", TEAM)
    own = put(sessions, cipher, "user", alice.id, OWN)
    got = resolve()
    assert (got.source, got.secret, got.masked) == ("own", OWN, own.masked)
    assert resolve(caller=caller_for(alice)).source == "own"
    assert resolve(caller=caller_for(bob, team_id(sessions, "Blue"))).secret.startswith("sk-bob0")
    # Other providers and endpoints: an endpoint never falls back to an env var.
    assert resolve(provider="anthropic", environ={"ANTHROPIC_API_KEY": "sk-ant-x"}).source == "env"
    assert resolve(provider="corp-vllm", environ={"OPENAI_API_KEY": ENV}) is None


def test_resolution_is_one_query(engine, sessions, cipher):
    alice = add_user(sessions, "alice", team="Red")
    put(sessions, cipher, "org", ORG_OWNER_ID, ORG)
    put(sessions, cipher, "team", team_id(sessions, "Red"), TEAM)
    me = caller_for(alice, team_id(sessions, "Red"))
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    with sessions() as s:
        event.listen(engine, "before_cursor_execute", count)
        try:
            got = keys.resolve_key(s, cipher, me, "openai", {})
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert got is not None and got.source == "team"
    assert len(statements) == 1 and "api_keys" in statements[0], statements


def test_a_key_moved_to_another_row_does_not_decrypt(sessions, cipher):
    alice = add_user(sessions, "alice")
    put(sessions, cipher, "org", ORG_OWNER_ID, ORG)
    put(sessions, cipher, "user", alice.id, OWN)
    with sessions.begin() as s:
        org_row = s.scalar(select(ApiKey).where(ApiKey.owner_kind == "org"))
        user_row = s.scalar(select(ApiKey).where(ApiKey.owner_kind == "user"))
        user_row.ciphertext = org_row.ciphertext  # an attacker copies the org key to themself
    with sessions() as s, pytest.raises(UndecryptableSecret) as info:
        keys.resolve_key(s, cipher, caller_for(alice), "openai", {})
    assert ORG not in str(info.value)


def test_used_and_auth_failed_marks(sessions, cipher):
    put(sessions, cipher, "org", ORG_OWNER_ID, ORG)
    with sessions() as s:
        key_id = s.scalar(select(ApiKey.id))
    seconds = [T0 + timedelta(seconds=n) for n in (0, 30, 90)]
    for at in seconds:
        with sessions.begin() as s:
            keys.mark_key_used(s, key_id, at)
    with sessions.begin() as s:
        keys.mark_key_auth_failed(s, key_id, seconds[1])
    with sessions() as s:
        (info,) = keys.list_keys(s, "org", ORG_OWNER_ID)
    assert info.last_used_at == seconds[2]  # the 30 s mark was skipped as too soon
    assert info.last_auth_failure_at == seconds[1]


def test_key_status_says_which_source_without_decrypting(sessions, cipher):
    alice = add_user(sessions, "alice", team="Red")
    red = team_id(sessions, "Red")
    put(sessions, cipher, "org", ORG_OWNER_ID, ORG)
    put(sessions, cipher, "team", red, TEAM, provider="anthropic")
    with sessions() as s:
        status = keys.key_status(
            s,
            caller_for(alice, red),
            ["openai", "anthropic", "gemini", "mistral", "corp-vllm"],
            {"GEMINI_API_KEY": "AIzaSyA0123456789abcdefghij"},
        )
    by = {st.provider: st for st in status}
    assert [st.provider for st in status] == [
        "openai",
        "anthropic",
        "gemini",
        "mistral",
        "corp-vllm",
    ]
    assert (by["openai"].source, by["openai"].masked) == ("org", "sk-…qrst")
    assert by["anthropic"].source == "team"
    assert (by["gemini"].source, by["gemini"].masked) == ("env", "…ghij")
    assert (by["mistral"].source, by["mistral"].env_var) == (None, "MISTRAL_API_KEY")
    assert by["mistral"].key_url == "https://console.mistral.ai/api-keys"
    assert (by["corp-vllm"].source, by["corp-vllm"].env_var) == (None, None)
    assert not any(sec in repr(status) for sec in ALL_SECRETS)


def test_secret_never_in_db_files_audit_or_reprs(isolated_env, sessions, cipher):
    alice = add_user(sessions, "alice", team="Red")
    infos = [
        put(sessions, cipher, "user", alice.id, OWN),
        put(sessions, cipher, "team", team_id(sessions, "Red"), TEAM),
        put(sessions, cipher, "org", ORG_OWNER_ID, ORG),
    ]
    with sessions() as s:
        resolved = keys.resolve_key(s, cipher, caller_for(alice), "openai", {})
        entries = audit.recent(s)
        infos += keys.list_keys(s, "org", ORG_OWNER_ID)
    assert resolved is not None and resolved.secret == OWN
    env_key = keys.ResolvedKey(ENV, "env", None, "sk-…qrst")
    for obj in (*infos, resolved, env_key):
        assert not any(sec in repr(obj) or sec in str(obj) for sec in ALL_SECRETS)
    assert resolved == keys.ResolvedKey("other", "own", resolved.key_id, resolved.masked)
    assert [e.action for e in entries].count("key.set") == 3
    assert not any(sec in repr(entries) for sec in ALL_SECRETS)
    db_bytes = b"".join(p.read_bytes() for p in Path(isolated_env).glob("switchboard.db*"))
    assert all(info.masked.encode() in db_bytes for info in infos)  # the rows are in there
    for sec in (OWN, TEAM, ORG):
        assert sec.encode() not in db_bytes
        assert sec.encode("utf-16-le") not in db_bytes


# --- CLI -----------------------------------------------------------------------------


@pytest.fixture
def run():
    return run_cli


def test_cli_key_set_list_delete_for_org_user_and_team(run, sessions):
    add_user(sessions, "alice", team="Red")
    outputs = []
    for owner, secret in (((), ORG), (("--user", "alice"), OWN), (("--team", "Red"), TEAM)):
        code, out, err = run("key", "set", "openai", *owner, stdin=secret + "\n")
        assert (code, err) == (0, ""), err
        assert "Saved the openai key for" in out and "sk-…" in out
        outputs.append(out + err)
        code, out, err = run("key", "list", *owner)
        assert code == 0 and out.splitlines()[1].split()[:2] == ["openai", "sk-…" + secret[-4:]]
        outputs.append(out + err)
    code, out, err = run("key", "delete", "openai", "--team", "Red")
    assert code == 0 and "Deleted the openai key of team 'Red'" in out
    code, out, _ = run("key", "list", "--team", "Red")
    assert "No keys for team 'Red'" in out
    outputs.append(out)
    assert not any(sec in text for sec in ALL_SECRETS for text in outputs)
    cipher = secrets.load_cipher(load_settings())
    with sessions() as s:
        alice = auth.get_user(s, "alice")
        got = keys.resolve_key(s, cipher, caller_for(alice, team_id(sessions, "Red")), "openai", {})
    assert got is not None and (got.source, got.secret) == ("own", OWN)


def test_cli_key_set_prints_warnings_not_the_key(run):
    code, out, err = run("key", "set", "openai", stdin="sk-ant-api03-0123456789abcdefghij\n")
    assert code == 0 and "warning: This looks like a key for anthropic" in out
    assert "0123456789abcdefghij" not in out + err


@pytest.mark.parametrize(
    ("argv", "stdin", "fragment"),
    [
        (("key", "set", "nope"), OWN, "Unknown provider 'nope'"),
        (("key", "set", "openai"), "\n", "The key is empty"),
        (("key", "set", "openai"), "", "The key is empty"),
        (("key", "set", "openai"), "sk-has space-0123456789", "spaces or line breaks"),
        (("key", "set", "openai", "--user", "ghost"), OWN, "No user named 'ghost'"),
        (("key", "set", "openai", "--team", "Ghosts"), OWN, "No team named 'Ghosts'"),
        (("key", "list", "--user", "ghost"), "", "switchboard user list"),
        (("key", "list", "--team", "Ghosts"), "", "switchboard user list"),
        (("key", "delete", "openai"), "", "has no openai key"),
        (("key", "delete", "openai", "--team", "Ghosts"), "", "No team named 'Ghosts'"),
    ],
)
def test_cli_key_bad_input_is_one_clear_line(run, argv, stdin, fragment):
    code, out, err = run(*argv, stdin=stdin)
    assert code == 2, (out, err)
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err
    assert OWN not in out + err


def test_cli_user_and_team_options_are_exclusive(run, capsys):
    with pytest.raises(SystemExit):
        run("key", "list", "--user", "a", "--team", "b")
    assert "not allowed with argument" in capsys.readouterr().err


def test_cli_secret_rotate(run, isolated_env, sessions):
    add_user(sessions, "alice")
    assert run("key", "set", "openai", stdin=ORG)[0] == 0
    assert run("key", "set", "gemini", "--user", "alice", stdin=OWN)[0] == 0
    before = (isolated_env / "secret_key").read_text()
    code, out, err = run("secret", "rotate")
    assert (code, err) == (0, "")
    assert "Re-encrypted 2 keys under master key" in out and "Removed 1 old master key" in out
    after = (isolated_env / "secret_key").read_text()
    assert after != before and before.strip() not in out and after.strip() not in out
    code, out, _ = run("key", "list")
    assert code == 0 and "sk-…qrst" in out


def test_cli_secret_rotate_with_env_tells_admin_to_drop_old_key(run, monkeypatch, sessions):
    old = secrets.generate_key()
    monkeypatch.setenv("SWITCHBOARD_SECRET_KEY", old)
    assert run("key", "set", "openai", stdin=ORG)[0] == 0
    code, _, err = run("secret", "rotate")
    assert code == 2 and "nothing to rotate to" in err and old not in err
    new = secrets.generate_key()
    monkeypatch.setenv("SWITCHBOARD_SECRET_KEY", f"{new},{old}")
    code, out, err = run("secret", "rotate")
    assert code == 0 and "Re-encrypted 1 keys" in out and "SWITCHBOARD_SECRET_KEY" in out
    assert new not in out + err and old not in out + err
    monkeypatch.setenv("SWITCHBOARD_SECRET_KEY", new)  # the old key is gone; rows still open
    with sessions() as s:
        got = keys.resolve_key(
            s, secrets.load_cipher(load_settings()), Caller(1, "x", "member"), "openai", {}
        )
    assert got is not None and got.secret == ORG
