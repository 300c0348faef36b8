"""Skip a malformed server-sent event before the provider SDK sees it.

litellm (through the OpenAI SDK, or its own Anthropic parser) raises on the first
event whose ``data:`` is not JSON, which would end a stream that the provider itself
carries on with. An httpx transport sits under litellm's clients and drops such an
event, so the answer continues on the same model with nothing lost or repeated.
Only ``text/event-stream`` bodies are touched; everything else passes through.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import httpx

log = logging.getLogger("switchboard.upstream")

_SEPARATORS = (b"\r\n\r\n", b"\n\n", b"\r\r")


def _next_event_end(buffer: bytes) -> tuple[int, int] | None:
    """(end of the event, end of its separator), for the earliest complete event."""
    found = [(i, i + len(sep)) for sep in _SEPARATORS if (i := buffer.find(sep)) >= 0]
    return min(found) if found else None


def is_malformed(event: bytes) -> bool:
    """True when the event's data is neither JSON nor the ``[DONE]`` terminator."""
    lines = event.decode("utf-8", errors="replace").splitlines()
    data = "\n".join(line[5:].lstrip(" ") for line in lines if line.startswith("data:"))
    if not data or data.strip() == "[DONE]":
        return False
    try:
        json.loads(data)
    except ValueError:
        return True
    return False


async def drop_malformed_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Re-yield complete events, minus malformed ones; a trailing partial event passes as-is."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        out = bytearray()
        while (bounds := _next_event_end(buffer)) is not None:
            end, after = bounds
            event = buffer[:end]
            if is_malformed(event):
                log.info("skipped one malformed stream event (%d bytes)", len(event))
            else:
                out += buffer[:after]
            buffer = buffer[after:]
        if out:
            yield bytes(out)
    if buffer:
        yield buffer


class _FilteredStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in drop_malformed_events(self._inner.__aiter__()):
            yield part

    async def aclose(self) -> None:
        await self._inner.aclose()


class SseSanitizingTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if "text/event-stream" not in response.headers.get("content-type", ""):
            return response
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_FilteredStream(response.stream),
            extensions=response.extensions,
            request=request,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


class SanitizedClients:
    """litellm clients whose transport skips malformed events, one set per event loop.

    Only the OpenAI family (``openai/…``: OpenAI and every OpenAI-compatible
    endpoint) and Anthropic accept an injected client in litellm; other providers keep
    litellm's own clients, where a malformed event still ends the attempt and the
    gateway continues the answer on the next model. The OpenAI family takes an SDK
    client or litellm's own handler, depending on which path litellm is set to use.
    """

    FAMILIES = ("openai", "anthropic")

    def __init__(self, max_per_loop: int = 64) -> None:
        self._max = max_per_loop
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, OrderedDict[tuple[str, str | None, str], Any]
        ] = weakref.WeakKeyDictionary()

    def client_for(
        self, litellm_model: str, api_key: str | None, api_base: str | None, *, openai_sdk: bool
    ) -> Any:
        """The client to pass to litellm as ``client=``, or None to let litellm pick."""
        family = litellm_model.partition("/")[0]
        if family not in self.FAMILIES:
            return None
        sdk = family == "openai" and openai_sdk
        loop = asyncio.get_running_loop()
        clients = self._by_loop.setdefault(loop, OrderedDict())
        # The key's digest, not the key: the cache must not be a second copy of secrets.
        digest = hashlib.sha256((api_key or "").encode()).hexdigest()
        cache_key = (family + "-sdk" * sdk, api_base, digest)
        client = clients.get(cache_key)
        if client is None:
            client = _openai_client(api_key, api_base) if sdk else _litellm_handler()
            clients[cache_key] = client
            if len(clients) > self._max:
                clients.popitem(last=False)
        else:
            clients.move_to_end(cache_key)
        return client

    async def aclose_current_loop(self) -> None:
        """Close the clients made on the running loop; call before the loop ends."""
        clients = self._by_loop.pop(asyncio.get_running_loop(), None)
        for client in (clients or {}).values():
            try:
                await client.close()  # AsyncOpenAI and AsyncHTTPHandler both close this way
            except Exception:
                log.debug("closing an upstream client failed", exc_info=True)


def _sanitized_httpx() -> httpx.AsyncClient:
    from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler

    # litellm's own transport (aiohttp), so cuts and stalls surface exactly as they do
    # on litellm's default clients; only the filter is added on top.
    inner = AsyncHTTPHandler._create_async_transport() or httpx.AsyncHTTPTransport()
    return httpx.AsyncClient(transport=SseSanitizingTransport(inner), follow_redirects=True)


def _openai_client(api_key: str | None, api_base: str | None) -> Any:
    import openai

    # None falls back to the SDK's own environment defaults, as litellm's would.
    return openai.AsyncOpenAI(
        api_key=api_key, base_url=api_base, max_retries=0, http_client=_sanitized_httpx()
    )


def _litellm_handler() -> Any:
    from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler

    handler = AsyncHTTPHandler()
    handler.client = _sanitized_httpx()
    return handler
