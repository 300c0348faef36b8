"""Endpoints where nothing listens, for "connection refused" tests."""

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
