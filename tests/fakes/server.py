"""Minimal HTTP/1.1 server on raw asyncio, run in a background thread.

Raw asyncio (not a web framework) so fakes keep socket-level control: abort with
RST, close mid-chunk, hold a connection open forever, write bytes that are not HTTP.
The loop lives in its own thread so sync and async tests can both use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import ssl
import struct
import threading
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus

HOST = "127.0.0.1"
_MAX_HEADER_BYTES = 64 * 1024
_START_TIMEOUT_S = 5.0
_STOP_TIMEOUT_S = 2.0


class BadRequest(Exception):
    """The bytes received were not a request we can parse."""


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str  # without the query string
    query: str
    version: str
    headers: Mapping[str, str]  # lower-cased names; repeated headers joined with ", "
    body: bytes

    @property
    def keep_alive(self) -> bool:
        conn = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return conn == "keep-alive"
        return conn != "close"


class Connection:
    """One accepted client socket, with the writes the fakes need."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn_id: int
    ) -> None:
        self.id = conn_id  # lets tests see which requests shared a keep-alive connection
        self.reader = reader
        self.writer = writer
        self.keep_alive = True
        self._chunked = False
        self.closed = False

    async def read_request(self) -> HttpRequest | None:
        """Return the next request, or None when the peer closed between requests."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial.strip():
                return None
            raise BadRequest("truncated request head") from exc
        except asyncio.LimitOverrunError as exc:
            raise BadRequest("request head too large") from exc
        if len(head) > _MAX_HEADER_BYTES:
            raise BadRequest("request head too large")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise BadRequest(f"bad request line: {lines[0]!r}")
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep:
                raise BadRequest(f"bad header line: {line!r}")
            key = name.strip().lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        if headers.get("expect", "").lower() == "100-continue":
            # curl asks before sending bodies over 1 KiB; without this it waits a second.
            self.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = await self._read_body(headers)
        path, _, query = target.partition("?")
        return HttpRequest(method.upper(), path, query, version, headers, body)

    async def _read_body(self, headers: Mapping[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size_line = await self.reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # Skip optional trailers up to the blank line.
                    while (await self.reader.readuntil(b"\r\n")) != b"\r\n":
                        pass
                    return b"".join(chunks)
                chunks.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
        length = headers.get("content-length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError as exc:
            raise BadRequest(f"bad content-length {length!r}") from exc
        return await self.reader.readexactly(n)

    # --- writing -------------------------------------------------------------

    def _head(self, status: int, headers: Mapping[str, str]) -> bytes:
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        if status == 529:
            reason = "Site Overloaded"  # not in http.HTTPStatus; Anthropic uses it
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines.append("Connection: keep-alive" if self.keep_alive else "Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def send(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        """A complete response with Content-Length."""
        all_headers = {**headers, "Content-Length": str(len(body))}
        self.writer.write(self._head(status, all_headers) + body)
        await self.writer.drain()

    async def send_head_only(
        self, status: int, headers: Mapping[str, str], content_length: int
    ) -> None:
        """Headers promising content_length bytes; the caller writes (part of) the body."""
        all_headers = {**headers, "Content-Length": str(content_length)}
        self.writer.write(self._head(status, all_headers))
        await self.writer.drain()

    async def start_stream(self, status: int, headers: Mapping[str, str], chunked: bool) -> None:
        """Open a streamed body: chunked, or delimited by closing the connection."""
        self._chunked = chunked
        all_headers = dict(headers)
        if chunked:
            all_headers["Transfer-Encoding"] = "chunked"
        else:
            self.keep_alive = False
        self.writer.write(self._head(status, all_headers))
        await self.writer.drain()

    async def write(self, data: bytes) -> None:
        """Raw bytes (inside a stream they are framed as one chunk)."""
        if self._chunked and data:
            data = f"{len(data):x}\r\n".encode() + data + b"\r\n"
        self.writer.write(data)
        await self.writer.drain()

    async def end_stream(self) -> None:
        if self._chunked:
            self.writer.write(b"0\r\n\r\n")
            await self.writer.drain()
        self._chunked = False

    async def close(self) -> None:
        """Graceful close (FIN after any buffered data)."""
        self.keep_alive = False
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.drain()
        self.writer.close()

    def abort(self, rst: bool = True) -> None:
        """Drop the socket at once; with rst the kernel sends a TCP reset, not a FIN."""
        self.keep_alive = False
        self.closed = True
        transport = self.writer.transport
        if rst:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # SO_LINGER 0 turns close() into an RST, which clients see as "reset by peer".
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    async def wait_peer_gone(self) -> None:
        """Hold the socket open until the client closes it (or the server stops)."""
        with contextlib.suppress(ConnectionError, OSError):
            while await self.reader.read(65536):
                pass
        self.abort(rst=False)


Handler = Callable[[HttpRequest, Connection], Awaitable[None]]
BadRequestHandler = Callable[[Connection, str], Awaitable[None]]


class BackgroundServer:
    """asyncio.start_server on 127.0.0.1:<random> in a daemon thread with its own loop."""

    def __init__(
        self,
        handler: Handler,
        on_bad_request: BadRequestHandler,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._handler = handler
        self._tls = tls
        self._on_bad_request = on_bad_request
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._conns: set[Connection] = set()
        self._conn_ids = itertools.count(1)
        self.port = 0
        self.errors: list[BaseException] = []  # bugs in a handler, kept for tests to check

    # --- lifecycle (called from the test's thread) -----------------------------

    def start(self) -> None:
        if self._loop is not None:
            raise RuntimeError("server already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="fake-llm", daemon=True)
        self._thread.start()
        self._call(lambda: self._listen(0))

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            self._call(self._go_down)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(_STOP_TIMEOUT_S)
            if not loop.is_running():
                loop.close()
            self._loop = None
            self._thread = None

    def down(self) -> None:
        """Stop listening and drop open connections; the port then refuses connections."""
        self._call(self._go_down)

    def up(self) -> None:
        """Listen again on the same port after down()."""
        self._call(lambda: self._listen(self.port))

    def _call(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Run fn() on the server's loop and wait for it."""
        if self._loop is None:
            raise RuntimeError("server not running")

        async def run() -> None:
            await fn()

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(_START_TIMEOUT_S)

    # --- inside the loop ----------------------------------------------------------

    async def _listen(self, port: int) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._serve, HOST, port, reuse_address=True, limit=_MAX_HEADER_BYTES, ssl=self._tls
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _go_down(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        await self._drop_connections()

    async def _drop_connections(self) -> None:
        for conn in list(self._conns):
            conn.abort(rst=False)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=_STOP_TIMEOUT_S)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = Connection(reader, writer, next(self._conn_ids))
        self._conns.add(conn)
        try:
            while conn.keep_alive and not conn.closed:
                try:
                    request = await conn.read_request()
                except BadRequest as exc:
                    conn.keep_alive = False
                    await self._on_bad_request(conn, str(exc))
                    break
                if request is None:
                    break
                conn.keep_alive = request.keep_alive
                await self._handler(request, conn)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass  # the client went away; nothing to answer
        except asyncio.CancelledError:
            # We only cancel on shutdown; ending normally keeps 3.11's StreamReaderProtocol
            # from logging "Exception in callback" for every dropped connection.
            pass
        except Exception as exc:  # a bug in the fake: make it visible, not a silent hang
            self.errors.append(exc)
            traceback.print_exc()
            conn.abort(rst=True)
        finally:
            self._conns.discard(conn)
            self._tasks.discard(task)
            if not conn.closed:
                conn.closed = True
                writer.close()
