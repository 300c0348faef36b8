"""Endpoints where nothing answers: refused connections, and connects that never complete."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator


@contextlib.contextmanager
def refused_url(path: str = "/v1") -> Iterator[str]:
    """Yield a URL on 127.0.0.1 whose port refuses connections.

    The port stays bound (but not listening) while the block runs, so no other
    test's server can grab it and turn "refused" into a surprise answer.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        yield f"http://127.0.0.1:{port}{path}"
    finally:
        sock.close()


@contextlib.contextmanager
def unanswered_url(path: str = "/v1") -> Iterator[str]:
    """Yield a URL on 127.0.0.1 where a TCP connect never completes.

    The port listens with a backlog of one, and the queue is filled by connections
    nobody accepts; Linux then drops further SYNs (tcp_abort_on_overflow=0, the
    default), so a client's connect waits until its own connect timeout, as it
    would for a provider behind a black-holing firewall.
    """
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        for _ in range(3):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            fillers.append(filler)
            with contextlib.suppress(BlockingIOError):  # in progress still fills the queue
                filler.connect(("127.0.0.1", port))
        yield f"http://127.0.0.1:{port}{path}"
    finally:
        for filler in fillers:
            filler.close()
        server.close()
