"""How Switchboard calls litellm: its own calls skip litellm's response metadata, and
the clients it hands litellm keep no provider cookies and trust what litellm is told
to trust. Against the loopback fakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import litellm
import pytest

from core.chat import STATUS_FAILED, STATUS_SUCCESS
from core.litellm_calls import default_completion
from tests.fakes import FakeOpenAI
from tests.fakes.tls import loopback_tls
from tests.gateway_support import GPT, HAIKU, OPENAI_KEY, Rig, collect

HI = [{"role": "user", "content": "Hi"}]


async def test_our_calls_skip_litellms_response_metadata_and_other_callers_keep_it(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.configure("gpt-4o", tokens=["Hello"])
    call = default_completion()
    kwargs: dict[str, Any] = {"model": GPT, "messages": HI, "api_base": fake_openai.base_url,
                              "api_key": OPENAI_KEY, "max_retries": 0}
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
    rig.openai.set_cookie = "_cfuvid=seen-on-alices-call; Path=/; HttpOnly"
    rig.anthropic.set_cookie = "_cfuvid=seen-on-alices-call; Path=/; HttpOnly"
    rig.openai.configure("gpt-4o", tokens=["Hi"])
    rig.anthropic.configure("claude-3-haiku-20240307", tokens=["Hi"])
    for model in (GPT, HAIKU):
        for stream in (False, True, False, True):
            text, summary = await collect(rig.gateway, rig.request(model, stream=stream,
                                                                   fallbacks=()))
            assert (text, summary.model) == ("Hi", model)
    sent = rig.openai.requests("gpt-4o") + rig.anthropic.requests("claude-3-haiku-20240307")
    assert len(sent) == 8
    assert [r for r in sent if "cookie" in r.headers] == []

    # The control: a client with a cookie jar (httpx's default) does send it back.
    async with httpx.AsyncClient() as plain:
        for _ in range(2):
            r = await plain.post(f"{rig.openai.base_url}/chat/completions",
                                 json={"model": "gpt-4o", "messages": HI},
                                 headers={"Authorization": f"Bearer {OPENAI_KEY}"})
            assert r.status_code == 200
    assert rig.openai.requests("gpt-4o")[-1].headers.get("cookie") == (
        "_cfuvid=seen-on-alices-call")


async def test_upstream_clients_trust_the_ca_litellm_is_told_to(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
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
            text, summary = await collect(rig.gateway, rig.request(GPT, stream=stream,
                                                                   fallbacks=()))
            assert (text, summary.status) == ("Hi", STATUS_SUCCESS)
        assert trusted.count("gpt-4o") == 2
