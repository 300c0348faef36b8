"""Skip a malformed server-sent event before the provider SDK sees it.

litellm (through the OpenAI SDK, or its own Anthropic parser) raises on the first
event whose ``data:`` is not JSON, which would end a stream that the provider itself
carries on with. An httpx transport sits under litellm's clients and drops such an
event, so the answer continues on the same model with nothing lost or repeated.
Only ``text/event-stream`` bodies are touched; everything else passes through.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

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
