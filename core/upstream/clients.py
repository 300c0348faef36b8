"""The HTTP clients Switchboard hands litellm for its upstream calls, one set per event loop.

Each client:
- skips a malformed server-sent event (core/upstream/sse_filter.py);
- keeps no cookies. litellm's shared clients store whatever cookies a provider sets
  (a CDN's bot-management cookie, say) and send them with every later call, whoever
  makes it, which lets the provider link requests of different users and teams.
  Not parsing them also spares httpx's cookie handling on every response;
- is built as litellm builds its own: the same SSL settings (``SSL_CERT_FILE``,
  ``SSL_VERIFY``, ``litellm.ssl_verify``), transport (aiohttp unless disabled) and
  User-Agent.

Only the OpenAI family (``openai/…``: OpenAI and every OpenAI-compatible endpoint)
and Anthropic accept an injected client in litellm; other providers keep litellm's
own clients. The OpenAI family takes an SDK client or litellm's own handler,
depending on which path litellm is set to use.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import ssl
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import httpx

from core.upstream.sse_filter import SseSanitizingTransport

log = logging.getLogger("switchboard.upstream")


class _DiscardingCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        """Store nothing a provider sets."""


class CookielessAsyncClient(httpx.AsyncClient):
    """An httpx client that never stores a response's cookies."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._kept = _DiscardingCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._kept

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._kept = _DiscardingCookies(cookies)


@dataclass
class _LoopClients:
    # One aiohttp session for all of a loop's clients, with a jar that stores nothing;
    # None when litellm is set to use httpx's transport instead.
    session: Any | None
    clients: OrderedDict[tuple[str, str | None, str], Any] = field(default_factory=OrderedDict)


class UpstreamClients:
    """Clients to pass litellm as ``client=``, cached per loop, family and endpoint."""

    FAMILIES = ("openai", "anthropic")

    def __init__(self, max_per_loop: int = 64) -> None:
        self._max = max_per_loop
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = (
            weakref.WeakKeyDictionary()
        )
        self._aiohttp: bool | None = None  # litellm's transport choice, read at first use

    def client_for(
        self,
        litellm_model: str,
        api_key: str | None,
        api_base: str | None,
        *,
        openai_sdk: bool,
        stream: bool,
    ) -> Any:
        """The client to pass to litellm as ``client=``, or None to let litellm pick."""
        family = litellm_model.partition("/")[0]
        if family not in self.FAMILIES:
            return None
        if not stream and not self._uses_aiohttp():
            # litellm's own httpx clients honour proxy variables and client certificates;
            # only a stream needs ours, for the malformed-event filter.
            return None
        sdk = family == "openai" and openai_sdk
        here = self._here()
        # An SDK client holds its key, so it is one per key: cached by the key's digest,
        # never the key, so the cache is not a second copy of secrets. litellm's handler
        # takes the key per call, so one serves every key.
        digest = hashlib.sha256((api_key or "").encode()).hexdigest() if sdk else ""
        cache_key = (family + "-sdk" * sdk, api_base, digest)
        client = here.clients.get(cache_key)
        if client is None:
            http = upstream_httpx(here.session)
            client = _openai_client(api_key, api_base, http) if sdk else _litellm_handler(http)
            here.clients[cache_key] = client
            if len(here.clients) > self._max:
                here.clients.popitem(last=False)
        else:
            here.clients.move_to_end(cache_key)
        return client

    async def aclose_current_loop(self) -> None:
        """Close the clients made on the running loop; call before the loop ends."""
        here = self._by_loop.pop(asyncio.get_running_loop(), None)
        if here is None:
            return
        for client in here.clients.values():
            try:
                await client.close()  # AsyncOpenAI and AsyncHTTPHandler both close this way
            except Exception:
                log.debug("closing an upstream client failed", exc_info=True)
        if here.session is not None:
            await here.session.close()

    def _uses_aiohttp(self) -> bool:
        if self._aiohttp is None:
            from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler

            self._aiohttp = AsyncHTTPHandler._should_use_aiohttp_transport()
        return self._aiohttp

    def _here(self) -> _LoopClients:
        loop = asyncio.get_running_loop()
        here = self._by_loop.get(loop)
        if here is None:
            here = _LoopClients(_cookieless_session() if self._uses_aiohttp() else None)
            self._by_loop[loop] = here
        return here


def _cookieless_session() -> Any:
    """An aiohttp session set up as litellm sets up its own, but keeping no cookies."""
    import aiohttp
    import litellm
    from litellm import constants
    from litellm.secret_managers.main import str_to_bool

    # aiohttp's own defaults where litellm leaves a limit unset (0).
    connector = aiohttp.TCPConnector(
        keepalive_timeout=constants.AIOHTTP_KEEPALIVE_TIMEOUT,
        ttl_dns_cache=constants.AIOHTTP_TTL_DNS_CACHE,
        local_addr=("0.0.0.0", 0) if litellm.force_ipv4 else None,
        limit=constants.AIOHTTP_CONNECTOR_LIMIT or 100,
        limit_per_host=max(0, constants.AIOHTTP_CONNECTOR_LIMIT_PER_HOST),
    )
    trust_env = bool(litellm.aiohttp_trust_env) or bool(
        str_to_bool(os.getenv("AIOHTTP_TRUST_ENV", "False"))
    )
    # TLS is set per request by litellm's transport, from its SSL settings.
    return aiohttp.ClientSession(
        connector=connector, trust_env=trust_env, cookie_jar=aiohttp.DummyCookieJar()
    )


def upstream_httpx(session: Any | None) -> httpx.AsyncClient:
    """A cookieless, event-filtering client, otherwise as litellm's handler makes one."""
    from litellm.llms.custom_httpx.http_handler import (
        AsyncHTTPHandler,
        get_default_headers,
        get_ssl_configuration,
    )

    verify = get_ssl_configuration()
    inner = AsyncHTTPHandler._create_async_transport(
        ssl_context=verify if isinstance(verify, ssl.SSLContext) else None,
        ssl_verify=verify if isinstance(verify, bool) else None,
        shared_session=session,
    ) or httpx.AsyncHTTPTransport(verify=verify)
    return CookielessAsyncClient(
        transport=SseSanitizingTransport(inner),
        headers=get_default_headers(),
        follow_redirects=True,
    )


def _openai_client(api_key: str | None, api_base: str | None, http: httpx.AsyncClient) -> Any:
    import openai

    # None falls back to the SDK's own environment defaults, as litellm's would.
    return openai.AsyncOpenAI(api_key=api_key, base_url=api_base, max_retries=0, http_client=http)


def _litellm_handler(http: httpx.AsyncClient) -> Any:
    from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler

    handler = AsyncHTTPHandler()
    handler.client = http
    return handler
