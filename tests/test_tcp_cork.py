"""A response's head and first body part leave as one segment: corked from start to body."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import httpx
import pytest

from core.api import tcp_cork
from core.api.app import build_app
from core.api.context import ApiContext
from core.api.tcp_cork import CorkedResponses
from core.config import load_settings
from tests.support.server import ServerThread

pytestmark = pytest.mark.skipif(not hasattr(socket, "TCP_CORK"), reason="TCP_CORK is Linux's")

Message = dict[str, Any]


class RecordingSocket:
    def __init__(self, events: list[tuple[str, object]]) -> None:
        self.events = events

    def setsockopt(self, level: int, option: int, value: int) -> None:
        assert (level, option) == (socket.IPPROTO_TCP, socket.TCP_CORK)
        self.events.append(("cork", value))


class Transport:
    def __init__(self, sock: RecordingSocket) -> None:
        self.sock = sock

    def get_extra_info(self, name: str) -> Any:
        return self.sock if name == "socket" else None


class ServerSend:
    """Stands in for uvicorn's bound ``send``, whose owner holds the transport."""

    def __init__(self, events: list[tuple[str, object]]) -> None:
        self.events = events
        self.transport = Transport(RecordingSocket(events))

    async def send(self, message: Message) -> None:
        self.events.append(("send", message["type"]))


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def _app(pause_between: bool) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if pause_between:
            await asyncio.sleep(0.01)  # a stream waiting for its next part
        await send({"type": "http.response.body", "body": b"{}"})

    return app


async def test_a_head_and_body_sent_in_one_step_leave_corked_together() -> None:
    events: list[tuple[str, object]] = []
    await CorkedResponses(_app(pause_between=False))(
        {"type": "http"}, _receive, ServerSend(events).send
    )
    assert events == [
        ("cork", 1),
        ("send", "http.response.start"),
        ("send", "http.response.body"),
        ("cork", 0),
    ]


async def test_a_stream_that_waits_is_uncorked_before_its_next_part() -> None:
    events: list[tuple[str, object]] = []
    await CorkedResponses(_app(pause_between=True))(
        {"type": "http"}, _receive, ServerSend(events).send
    )
    assert events == [
        ("cork", 1),
        ("send", "http.response.start"),
        ("cork", 0),
        ("send", "http.response.body"),
    ]


async def test_without_a_socket_to_reach_messages_pass_through_untouched() -> None:
    sent: list[Message] = []

    async def plain_send(message: Message) -> None:  # an in-memory transport's
        sent.append(message)

    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(send)
        await send({"type": "http.response.start", "status": 204, "headers": []})

    await CorkedResponses(app)({"type": "http"}, _receive, plain_send)
    assert seen == [plain_send] and [m["status"] for m in sent] == [204]


def test_a_closed_socket_is_not_an_error() -> None:
    sock = socket.socket()
    sock.close()
    assert tcp_cork.set_cork(sock, True) is False


def test_over_uvicorn_every_response_is_whole_and_the_socket_uncorked_after_it() -> None:
    """Real sockets: answers on one keep-alive connection, and a stream, arrive whole."""
    corked_at_start: list[int] = []
    corked_mid: list[int] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        sock = scope["state"]["socket"]
        # What the previous response on this connection left behind: must be uncorked.
        corked_at_start.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK))
        if scope["path"] == "/stream":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/plain")],
                }
            )
            for part in (b"one ", b"two ", b"three"):
                await send({"type": "http.response.body", "body": part, "more_body": True})
                await asyncio.sleep(0.01)
            await send({"type": "http.response.body", "body": b""})
            return
        body = json.dumps({"path": scope["path"]}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        corked_mid.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK))  # head held
        await send({"type": "http.response.body", "body": body})

    corked = CorkedResponses(inner)

    async def outer(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            # Lets the app read the option; uvicorn's own send goes on to the middleware.
            scope["state"] = {"socket": tcp_cork._socket_of(send)}
        await corked(scope, receive, send)

    with ServerThread(outer) as server, httpx.Client(base_url=server.url) as client:
        answers = [client.get(f"/n{i}") for i in range(3)]
        streamed = client.get("/stream")
    assert [a.json() for a in answers] == [{"path": f"/n{i}"} for i in range(3)]
    assert streamed.text == "one two three"
    assert corked_mid == [1, 1, 1] and corked_at_start == [0, 0, 0, 0]


def test_switchboard_api_is_served_through_it(isolated_env: object) -> None:
    assert isinstance(build_app(ApiContext(load_settings())), CorkedResponses)
