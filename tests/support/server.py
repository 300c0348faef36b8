"""uvicorn serving an ASGI app in a background thread, on a loopback port bound first."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from typing import Any

import httpx
import uvicorn


def free_socket() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class ServerThread:
    """uvicorn in a background thread, bound before start so the port cannot be taken."""

    def __init__(self, app: Any) -> None:
        self.sock = free_socket()
        # The stdlib loop: uvloop would replace the process-wide event-loop policy and
        # break every later asyncio test in this process.
        config = uvicorn.Config(app, log_level="warning", lifespan="on", loop="asyncio")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, args=([self.sock],), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def wait_for_streamlit(proc: subprocess.Popen[bytes], base: str, deadline_s: float) -> str | None:
    """Poll a `streamlit run` child's health check until it answers "ok".

    Returns None once healthy, else why not: the process exited, or the deadline passed
    (with the last answer or error). Waits on the condition, never a fixed sleep.
    """
    deadline = time.monotonic() + deadline_s
    last = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"it exited with code {proc.returncode}"
        try:
            resp = httpx.get(f"{base}/_stcore/health", timeout=2.0)
            if resp.status_code == 200 and resp.text.strip() == "ok":
                return None
            last = f"HTTP {resp.status_code}: {resp.text[:200]!r}"
        except httpx.HTTPError as exc:
            last = f"{exc.__class__.__name__}: {exc}"
        time.sleep(0.2)
    return f"not healthy within {deadline_s:.0f}s (last check: {last})"
