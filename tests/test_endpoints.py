"""core.settings.endpoints and the `provider` commands: new endpoints, overrides, validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core.accounts import keys
from core.accounts.secrets import Cipher
from core.errors import Conflict, InvalidInput, NotFound
from core.settings import endpoints
from core.settings.endpoints import EndpointInfo
from core.store import audit
from core.store.tables import ORG_OWNER_ID, ApiKey
from tests.support.cli import run_cli

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
BUILTIN = ("openai", "anthropic", "together_ai")


def add(
    sessions,
    name="corp-vllm",
    kind="openai-compatible",
    api_base="https://llm.corp/v1/",
    models=("llama-3-70b", "qwen2"),
    **extra,
):
    with sessions.begin() as s:
        return endpoints.add_endpoint(
            s,
            name=name,
            kind=kind,
            api_base=api_base,
            models=models,
            actor="admin",
            now=T0,
            builtin_providers=BUILTIN,
            **extra,
        )


def test_add_list_and_audit(sessions):
    info = add(sessions, models=(" llama-3-70b ", "qwen2", "llama-3-70b"), supports_prefill=True)
    assert info == EndpointInfo(
        "corp-vllm", "openai-compatible", "https://llm.corp/v1", ("llama-3-70b", "qwen2"), True
    )
    add(
        sessions,
        name="openai",
        kind="override",
        api_base="http://proxy.internal:8080/v1",
        models=(),
    )
    with sessions() as s:
        assert [e.name for e in endpoints.list_endpoints(s)] == ["corp-vllm", "openai"]
        assert endpoints.get_endpoint(s, "openai").kind == "override"
        assert endpoints.get_endpoint(s, "nope") is None
        entries = audit.recent(s)
    assert [e.action for e in entries] == ["endpoint.create", "endpoint.create"]
    assert entries[1].details["api_base"] == "https://llm.corp/v1"


@pytest.mark.parametrize(
    "url",
    [
        "",
        "llm.corp/v1",
        "ftp://llm.corp",
        "https://",
        "http:///v1",
        "https://llm corp/v1",
        "https://llm.corp:notaport/v1",
        "javascript:alert(1)",
        "https://x/" + "a" * 600,
    ],
)
def test_bad_urls_are_refused(sessions, url):
    with pytest.raises(InvalidInput, match="is not a valid http\\(s\\) URL"):
        add(sessions, api_base=url)


def test_credentials_in_the_url_are_refused(sessions):
    with pytest.raises(InvalidInput, match="not in the endpoint URL") as info:
        add(sessions, api_base="https://user:hunter2@llm.corp/v1")
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"name": "Corp VLLM"}, InvalidInput, "is not allowed"),
        ({"name": "-corp"}, InvalidInput, "is not allowed"),
        ({"name": "x" * 65}, InvalidInput, "is not allowed"),
        ({"name": "openai"}, InvalidInput, "is a built-in provider"),
        ({"name": "corp", "kind": "override"}, InvalidInput, "Only a built-in provider"),
        ({"kind": "azure"}, InvalidInput, "Unknown endpoint type 'azure'"),
        ({"models": ("ok", "")}, InvalidInput, "Model name '' is not allowed"),
        ({"models": ("has space",)}, InvalidInput, "Model name 'has space'"),
    ],
)
def test_bad_endpoints_are_refused(sessions, kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        add(sessions, **kwargs)
    with sessions() as s:
        assert endpoints.list_endpoints(s) == []


def test_duplicate_is_a_conflict_and_update_upserts(sessions):
    add(sessions)
    with pytest.raises(Conflict, match="already exists"):
        add(sessions, api_base="https://other.corp/v1")
    later = T0 + timedelta(hours=1)
    with sessions.begin() as s:
        changed = endpoints.update_endpoint(
            s,
            name="corp-vllm",
            kind="openai-compatible",
            api_base="https://other.corp/v1",
            models=["qwen3"],
            actor="admin",
            now=later,
            builtin_providers=BUILTIN,
        )
        created = endpoints.update_endpoint(
            s,
            name="anthropic",
            kind="override",
            api_base="https://gw.corp/anthropic",
            actor="admin",
            now=later,
            builtin_providers=BUILTIN,
        )
    assert (changed.api_base, changed.models, changed.supports_prefill) == (
        "https://other.corp/v1",
        ("qwen3",),
        False,
    )
    assert created.kind == "override"
    with sessions() as s:
        assert len(endpoints.list_endpoints(s)) == 2
        assert [e.action for e in audit.recent(s)][:2] == ["endpoint.create", "endpoint.update"]


def test_delete_drops_the_endpoints_keys_but_not_a_builtins(sessions):
    cipher = Cipher([bytes(32)])
    add(sessions)
    add(sessions, name="openai", kind="override", api_base="https://proxy.corp/v1", models=())
    with sessions.begin() as s:
        for provider in ("corp-vllm", "openai"):
            keys.set_key(
                s,
                cipher,
                owner_kind="org",
                owner_id=ORG_OWNER_ID,
                provider=provider,
                secret="sk-0123456789abcdefghij",
                actor="admin",
                now=T0,
                known_providers=("corp-vllm", "openai"),
            )
    with sessions.begin() as s:
        endpoints.delete_endpoint(s, name="corp-vllm", actor="admin", now=T0)
        endpoints.delete_endpoint(s, name="openai", actor="admin", now=T0)
    with sessions() as s:
        assert endpoints.list_endpoints(s) == []
        assert s.scalars(select(ApiKey.provider)).all() == ["openai"]
        assert audit.recent(s)[1].details == {"kind": "openai-compatible", "keys_removed": 1}
    with sessions.begin() as s, pytest.raises(NotFound, match="switchboard provider list"):
        endpoints.delete_endpoint(s, name="corp-vllm", actor="admin", now=T0)


# --- CLI -----------------------------------------------------------------------------


@pytest.fixture
def run():
    return run_cli


def test_cli_provider_add_list_and_key_for_the_endpoint(run):
    code, out, _ = run("provider", "list")
    assert code == 0 and "No endpoints yet" in out
    code, out, err = run(
        "provider",
        "add",
        "corp-vllm",
        "--type",
        "openai-compatible",
        "--api-base",
        "https://llm.corp/v1",
        "--models",
        "llama-3-70b,qwen2",
        "--prefill",
    )
    assert (code, err) == (0, "")
    assert "Added endpoint 'corp-vllm'" in out and "switchboard key set corp-vllm" in out
    code, out, err = run(
        "provider",
        "add",
        "anthropic",
        "--type",
        "anthropic",
        "--api-base",
        "https://gw.corp/anthropic",
    )
    assert (code, err) == (0, "") and "Added override of 'anthropic'" in out
    code, out, _ = run("provider", "list")
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "API", "BASE", "MODELS", "PREFILL"]
    assert lines[1].split() == ["anthropic", "override", "https://gw.corp/anthropic", "-", "no"]
    assert lines[2].split() == [
        "corp-vllm",
        "openai-compatible",
        "https://llm.corp/v1",
        "llama-3-70b,qwen2",
        "yes",
    ]
    code, out, err = run("key", "set", "corp-vllm", stdin="corp-token-0123456789abcdef\n")
    assert code == 0 and "…cdef" in out and "corp-token-0123456789" not in out + err


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("corp", "--type", "vllm", "--api-base", "https://x.corp"), "--type 'vllm' does not fit"),
        (("corp", "--type", "openai", "--api-base", "https://x.corp"), "does not fit 'corp'"),
        (("nope", "--type", "nope", "--api-base", "https://x.corp"), "only for built-in"),
        (("corp", "--type", "openai-compatible", "--api-base", "x.corp"), "not a valid http(s)"),
        (
            ("openai", "--type", "openai-compatible", "--api-base", "https://x.corp"),
            "is a built-in provider",
        ),
        (("Corp", "--type", "openai-compatible", "--api-base", "https://x.corp"), "is not allowed"),
        (
            (
                "corp",
                "--type",
                "openai-compatible",
                "--api-base",
                "https://x.corp",
                "--models",
                "a,b c",
            ),
            "Model name",
        ),
    ],
)
def test_cli_provider_add_bad_input(run, argv, fragment):
    code, out, err = run("provider", "add", *argv)
    assert code == 2, (out, err)
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_duplicate_endpoint(run):
    argv = ("provider", "add", "corp", "--type", "openai-compatible", "--api-base", "https://x.io")
    assert run(*argv)[0] == 0
    code, _, err = run(*argv)
    assert code == 2 and "already exists" in err and "switchboard provider list" in err


def test_cli_key_set_for_unknown_endpoint_then_known(run):
    code, _, err = run("key", "set", "corp", stdin="corp-token-0123456789abcdef\n")
    assert code == 2 and "Unknown provider 'corp'" in err
    run("provider", "add", "corp", "--type", "openai-compatible", "--api-base", "http://10.0.0.5")
    assert run("key", "set", "corp", stdin="corp-token-0123456789abcdef\n")[0] == 0


class _NoInternet(RuntimeError):
    """Raised for a lookup of any host but loopback: tests never reach the internet."""


@pytest.fixture
def outside_lookups(monkeypatch) -> list[str]:
    """Host names looked up other than loopback; each such lookup fails at once."""
    import socket

    real = socket.getaddrinfo
    seen: list[str] = []

    def guarded(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in (None, "127.0.0.1", "localhost", "::1"):
            seen.append(name)
            raise _NoInternet(f"a test looked up {name}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    return seen


@pytest.mark.parametrize("stream", [False, True])
async def test_endpoint_added_by_cli_sends_its_stored_key_upstream(
    rig, run, outside_lookups, stream
):
    from tests.fakes import FakeOpenAI
    from tests.gateway_support import OPENAI_KEY, collect

    secret = "corp-token-0123456789abWXYZ"
    with FakeOpenAI() as corp:
        corp.accepted_keys = frozenset({secret})  # any other key gets the provider's 401
        corp.configure("qwen2.5-72b", tokens=["Hi ", "from ", "corp"])
        code, _, err = run(
            "provider",
            "add",
            "corp-vllm",
            "--type",
            "openai-compatible",
            "--api-base",
            corp.base_url,
            "--models",
            "qwen2.5-72b,qwen2",
        )
        assert (code, err) == (0, "")
        code, out, err = run("key", "set", "corp-vllm", stdin=secret + "\n")
        assert code == 0 and secret not in out + err
        rig.gateway.refresh()  # as after an admin's change in another process
        request = rig.request("corp-vllm/qwen2.5-72b", stream=stream, fallbacks=())
        text, s = await collect(rig.gateway, request)
    assert text == "Hi from corp" and s.error is None
    assert (s.model, s.provider, s.attempts[0].key_source) == (
        "corp-vllm/qwen2.5-72b",
        "corp-vllm",
        "org",
    )
    [sent] = corp.requests()
    assert (sent.model, sent.key_last4, sent.outcome) == ("qwen2.5-72b", "WXYZ", "ok")
    assert sent.key_last4 != OPENAI_KEY[-4:] and rig.openai.count() == 0
    [row] = rig.rows()
    assert (row.served_model, row.provider, row.status) == (
        "corp-vllm/qwen2.5-72b",
        "corp-vllm",
        "success",
    )
    assert outside_lookups == []


async def test_streaming_to_a_llama_endpoint_contacts_no_other_host(rig, outside_lookups):
    from tests.fakes import FakeOpenAI
    from tests.gateway_support import collect

    with FakeOpenAI() as corp:
        with rig.sessions.begin() as s:
            endpoints.add_endpoint(
                s,
                name="corp-vllm",
                kind="openai-compatible",
                api_base=corp.base_url,
                models=["llama-3-70b-instruct"],
                actor="t",
                now=T0,
                builtin_providers=rig.catalog.providers(),
            )
        rig.gateway.refresh()
        request = rig.request("corp-vllm/llama-3-70b-instruct", stream=True, fallbacks=())
        text, s = await collect(rig.gateway, request)
    assert text and s.error is None and corp.count() == 1
    assert outside_lookups == []


def test_an_endpoint_is_a_provider_a_route_can_prefer(run):
    argv = (
        "route",
        "set",
        "--org",
        "--model",
        "openai/gpt-4o-mini",
        "--cost-optimised",
        "--provider-order",
        "corp,openai",
    )
    code, _, err = run(*argv)
    assert code == 2 and "unknown provider 'corp'" in err
    run(
        "provider",
        "add",
        "corp",
        "--type",
        "openai-compatible",
        "--api-base",
        "http://10.0.0.5",
        "--models",
        "llama-3",
    )
    code, out, err = run(*argv)
    assert (code, err) == (0, ""), out
    assert "--provider-order corp,openai" in out
