"""The least an HTTP hop can add here: a proxy with no gateway in it, for comparison.

uvicorn (the same server, loop and parser as `switchboard api`) with a bare ASGI app
that forwards each POST body to the upstream over one aiohttp session and returns the
answer. Measured beside the API in the same run, it splits the API's added latency into
what any extra process on the path costs on this machine and what Switchboard's own
work (auth, routing, litellm, ledger) adds. Run as
``python -m bench.hop_floor PORT UPSTREAM_BASE_URL``.
"""

from __future__ import annotations

import sys
from typing import Any

Message = dict[str, Any]


def proxy_app(upstream: str) -> Any:
    import aiohttp

    sessions: list[aiohttp.ClientSession] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    sessions.append(aiohttp.ClientSession())
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await sessions[0].close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/health":
            status, data = 200, b"ok"
        else:
            headers = {
                "content-type": "application/json",
                "authorization": dict(scope["headers"]).get(b"authorization", b"").decode(),
            }
            async with sessions[0].post(
                upstream + "/chat/completions", data=body, headers=headers
            ) as answer:
                status, data = answer.status, await answer.read()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": data})

    return app


def main() -> None:
    import uvicorn

    port, upstream = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(proxy_app(upstream), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
