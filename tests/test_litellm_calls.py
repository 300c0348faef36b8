"""How Switchboard calls litellm: its own calls skip litellm's response metadata, and
the clients it hands litellm keep no provider cookies and trust what litellm is told
to trust. Against the loopback fakes."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import litellm
import pytest

from core.clock import utc_now
from core.request import STATUS_FAILED, STATUS_SUCCESS
from core.settings import endpoints
from core.upstream.calls import TRANSIENT, UNTRUSTED, classify
from core.upstream.litellm_calls import default_completion
from tests.fakes import FakeOpenAI
from tests.fakes.tls import loopback_tls
from tests.gateway_support import GPT, HAIKU, OPENAI_KEY, Rig, collect

HI = [{"role": "user", "content": "Hi"}]


async def test_our_calls_skip_litellms_response_metadata_and_other_callers_keep_it(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.configure("gpt-4o", tokens=["Hello"])
    call = default_completion()
    kwargs: dict[str, Any] = {
        "model": GPT,
        "messages": HI,
        "api_base": fake_openai.base_url,
        "api_key": OPENAI_KEY,
        "max_retries": 0,
    }
    ours = await call(**kwargs)
    theirs = await litellm.acompletion(**kwargs)  # anyone else's call in the process
    assert ours.choices[0].message.content == theirs.choices[0].message.content == "Hello"
    # The metadata re-prices the answer; the ledger prices our calls itself.
    assert "response_cost" not in ours._hidden_params
    assert theirs._hidden_params["response_cost"] is not None
    default_completion()  # installing twice must not wrap twice
    again = await litellm.acompletion(**kwargs)
    assert again._hidden_params["response_cost"] is not None


async def test_upstream_calls_never_send_a_providers_cookie_back(rig: Rig) -> None:
    """litellm's shared clients would replay a CDN cookie from one user's call on
    everyone's later calls, linking them at the provider."""
    # By host name: aiohttp's jar ignores cookies from a bare IP address.
    rig.point_openai_at(rig.openai.base_url.replace("127.0.0.1", "localhost"))
    with rig.sessions.begin() as s:
        endpoints.update_endpoint(
            s,
            name="anthropic",
            kind="override",
            actor="t",
            now=utc_now(),
            api_base=rig.anthropic.base_url.replace("127.0.0.1", "localhost"),
            builtin_providers=rig.catalog.providers(),
        )
    rig.gateway.refresh()
    rig.openai.set_cookie = "_cfuvid=seen-on-alices-call; Path=/; HttpOnly"
    rig.anthropic.set_cookie = "_cfuvid=seen-on-alices-call; Path=/; HttpOnly"
    rig.openai.configure("gpt-4o", tokens=["Hi"])
    rig.anthropic.configure("claude-3-haiku-20240307", tokens=["Hi"])
    for model in (GPT, HAIKU):
        for stream in (False, True, False, True):
            text, summary = await collect(
                rig.gateway, rig.request(model, stream=stream, fallbacks=())
            )
            assert (text, summary.model) == ("Hi", model)
    sent = rig.openai.requests("gpt-4o") + rig.anthropic.requests("claude-3-haiku-20240307")
    assert len(sent) == 8
    assert [r for r in sent if "cookie" in r.headers] == []

    # The control: clients with a cookie jar (httpx's, aiohttp's) do send it back.
    url = f"{rig.openai.base_url.replace('127.0.0.1', 'localhost')}/chat/completions"
    body = {"model": "gpt-4o", "messages": HI}
    auth = {"Authorization": f"Bearer {OPENAI_KEY}"}
    async with httpx.AsyncClient() as plain:
        for _ in range(2):
            assert (await plain.post(url, json=body, headers=auth)).status_code == 200
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            async with session.post(url, json=body, headers=auth) as r:
                assert r.status == 200
    replayed = [r.headers.get("cookie") for r in rig.openai.requests("gpt-4o")[-4:]]
    assert replayed == [None, "_cfuvid=seen-on-alices-call"] * 2


def test_only_a_refused_certificate_is_untrusted_not_a_relay_quoting_one() -> None:
    refused = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] self-signed")
    try:
        try:
            raise refused
        except ssl.SSLError as exc:
            raise litellm.InternalServerError(
                "Cannot connect to host ... CERTIFICATE_VERIFY_FAILED", "openai", "gpt-4o"
            ) from exc
    except litellm.InternalServerError as wrapped:
        assert classify(wrapped).kind == UNTRUSTED
    # A relay's own 500 that quotes its upstream's failure is an ordinary transient error.
    relay = litellm.InternalServerError(
        "upstream said: CERTIFICATE_VERIFY_FAILED", "openai", "gpt-4o"
    )
    assert classify(relay).kind == TRANSIENT


async def test_upstream_clients_trust_the_ca_litellm_is_told_to(
    rig: Rig,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A provider behind a corporate proxy with its own CA: SSL_CERT_FILE, as litellm
    reads it, is what our clients trust, streaming or not."""
    context, cert = loopback_tls(tmp_path)
    with FakeOpenAI(tls=context) as untrusted, FakeOpenAI(tls=context) as trusted:
        untrusted.configure("gpt-4o", tokens=["Hi"])
        trusted.configure("gpt-4o", tokens=["Hi"])
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        rig.point_openai_at(untrusted.base_url)
        _, refused = await collect(rig.gateway, rig.request(GPT, fallbacks=()))
        assert refused.status == STATUS_FAILED
        assert [a.error_class for a in refused.attempts] == ["CertificateVerifyFailed"]
        assert "certificate verify failed" in str(refused.error)
        assert untrusted.count("gpt-4o") == 0  # nothing was sent over an unverified link

        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        rig.point_openai_at(trusted.base_url)
        for stream in (False, True):
            text, summary = await collect(
                rig.gateway, rig.request(GPT, stream=stream, fallbacks=())
            )
            assert (text, summary.status) == ("Hi", STATUS_SUCCESS)
        assert trusted.count("gpt-4o") == 2
