"""The SSE filter under litellm's clients: malformed events dropped, everything else intact."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import httpx

from core.upstream.sse_filter import SseSanitizingTransport, drop_malformed_events, is_malformed


async def _chunks(parts: Sequence[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _filtered(parts: Sequence[bytes]) -> bytes:
    return b"".join([p async for p in drop_malformed_events(_chunks(parts))])


def test_is_malformed_only_for_unparsable_data():
    assert is_malformed(b"data: {not json")
    assert not is_malformed(b'data: {"a": 1}')
    assert not is_malformed(b"data: [DONE]")
    assert not is_malformed(b": keep-alive comment")
    assert not is_malformed(b'event: ping\ndata: {"type": "ping"}')


async def test_events_split_across_reads_are_kept_whole_and_in_order():
    body = (
        b'data: {"n": 1}\n\ndata: {not json\n\nevent: x\r\ndata: {"n": 2}\r\n\r\ndata: [DONE]\n\n'
    )
    # Every split point, so no boundary between reads can lose or merge events.
    for cut in range(1, len(body)):
        out = await _filtered([body[:cut], body[cut:]])
        assert out == b'data: {"n": 1}\n\nevent: x\r\ndata: {"n": 2}\r\n\r\ndata: [DONE]\n\n'


async def test_trailing_partial_event_passes_through_for_cut_detection():
    assert await _filtered([b'data: {"n": 1}\n\ndata: {"n"']) == b'data: {"n": 1}\n\ndata: {"n"'


async def test_transport_leaves_non_stream_bodies_alone():
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/sse":
            return httpx.Response(
                200,
                headers={"content-type": "text/event-stream"},
                content=b"data: {bad\n\ndata: {}\n\n",
            )
        return httpx.Response(
            200, headers={"content-type": "application/json"}, content=b"{bad json stays}"
        )

    transport = SseSanitizingTransport(httpx.MockTransport(answer))
    async with httpx.AsyncClient(transport=transport, base_url="http://upstream.test") as client:
        assert (await client.get("/sse")).content == b"data: {}\n\n"
        assert (await client.get("/json")).content == b"{bad json stays}"
