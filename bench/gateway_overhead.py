"""Added latency of the in-process gateway over calling the same fake provider directly.

Both sides go through litellm.acompletion to the same loopback fake, so the
difference is Switchboard's own work: routing, key lookup, rate limit, budget
reservation, breaker and retry bookkeeping, and queueing the ledger rows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from bench.common import Stats, print_table, scratch_env, stats

GPT = "openai/gpt-4o"
KEY = "sk-bench-000000000000"


async def _measure(call: Callable[[], Awaitable[object]], clients: int, per_client: int
                   ) -> list[float]:
    samples: list[float] = []

    async def client() -> None:
        for _ in range(per_client):
            t0 = time.perf_counter()
            await call()
            samples.append(time.perf_counter() - t0)

    await asyncio.gather(*(client() for _ in range(clients)))
    return samples


def run(requests: int = 400) -> list[tuple[str, Stats, Stats]]:
    import litellm

    from core import endpoints
    from core.auth import create_user
    from core.chat import Caller, ChatRequest
    from core.clock import utc_now
    from core.runtime import build_runtime
    from tests.fakes import FakeOpenAI

    results: list[tuple[str, Stats, Stats]] = []
    with scratch_env(), FakeOpenAI() as fake:
        runtime = build_runtime()
        with runtime.sessions.begin() as s:
            user = create_user(s, username="bench", password="not-guessable-123", role="member",
                               actor="bench", now=utc_now(), rounds=4)
            endpoints.add_endpoint(s, name="openai", kind="override", api_base=fake.base_url,
                                   actor="bench", now=utc_now(),
                                   builtin_providers=runtime.catalog.providers())
        gateway = runtime.gateway
        gateway.environ = {"OPENAI_API_KEY": KEY}
        caller = Caller(user.id, user.username, user.role)
        messages = ({"role": "user", "content": "Say hello to the team"},)
        request = ChatRequest(caller=caller, messages=messages, model=GPT, fallbacks=())

        async def direct() -> object:
            return await litellm.acompletion(
                model=GPT, messages=list(messages), api_base=fake.base_url, api_key=KEY,
                max_retries=0, max_tokens=16384)

        async def through_gateway() -> object:
            return await gateway.complete(request)

        async def scenario(clients: int) -> tuple[Stats, Stats]:
            per_client = max(1, requests // clients)
            await _measure(direct, clients, 5)  # warm both paths
            await _measure(through_gateway, clients, 5)
            # Interleave rounds so machine noise hits both sides alike.
            base: list[float] = []
            gate: list[float] = []
            for _ in range(4):
                base += await _measure(direct, clients, per_client // 4 or 1)
                gate += await _measure(through_gateway, clients, per_client // 4 or 1)
            return stats(base), stats(gate)

        for clients in (1, 32):
            b, g = asyncio.run(scenario(clients))
            results.append((f"{clients} client{'s' if clients > 1 else ''}", b, g))
        gateway.flush()
        runtime.close()
    rows = [
        (name, f"{b.p50_ms:.2f}", f"{g.p50_ms:.2f}", f"{g.p50_ms - b.p50_ms:+.2f}",
         f"{g.p50_ms / b.p50_ms:.2f}x", f"{b.p95_ms:.2f}", f"{g.p95_ms:.2f}",
         f"{g.p95_ms - b.p95_ms:+.2f}", b.n)
        for name, b, g in results
    ]
    print_table(
        "In-process gateway vs direct litellm call to the same fake (ms)",
        ("concurrency", "direct p50", "gateway p50", "added p50", "ratio", "direct p95",
         "gateway p95", "added p95", "n"),
        rows,
    )
    return results
