"""Added latency of the in-process gateway over calling the same fake provider directly.

Both sides go through litellm.acompletion to the same loopback fake (in a process of
its own, bench/fake_process.py, as a real provider would be), so the
difference is Switchboard's own work: routing, key lookup, rate limit, budget
reservation, breaker and retry bookkeeping, and queueing the ledger rows.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING

from bench.common import Stats, bench_user, print_table, scratch_env, stats
from bench.fake_process import fake_openai_process

if TYPE_CHECKING:
    from core.chat import ChatRequest
    from core.runtime import Runtime

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


@dataclass(frozen=True)
class Overhead:
    """One concurrency level: pooled samples per side and the paired added latency."""

    name: str
    direct: Stats
    gateway: Stats
    added_p50_ms: float  # median over rounds of (gateway p50 - direct p50) in that round
    added_p95_ms: float
    spread_p50_ms: tuple[float, float]  # quartiles of those per-round p50 differences


def _paired(
    rounds: list[tuple[list[float], list[float]]],
) -> tuple[float, float, tuple[float, float]]:
    """Median per-round differences: noise that spans a round hits both sides alike."""
    d50 = [stats(g).p50_ms - stats(b).p50_ms for b, g in rounds]
    d95 = [stats(g).p95_ms - stats(b).p95_ms for b, g in rounds]
    q1, _, q3 = statistics.quantiles(d50, n=4)
    return statistics.median(d50), statistics.median(d95), (q1, q3)


# (clients, requests per client per round and side). 32 clients of an instant fake
# saturate the one event loop: each request waits for the CPU of the 31 others
# (Little's law), so the latency added there is about 32 times the gateway's own CPU
# per request, and noisy, as every hiccup of the machine is multiplied as well.
SCENARIOS: tuple[tuple[int, int], ...] = ((1, 128), (32, 16))


def run(rounds: int = 16) -> list[Overhead]:
    """``rounds`` paired rounds of each scenario in SCENARIOS."""
    import litellm

    from core import heap
    from core.chat import Caller, ChatRequest
    from core.runtime import build_runtime

    results: list[Overhead] = []
    with scratch_env(), fake_openai_process() as fake:
        runtime = build_runtime()
        user = bench_user(runtime, fake.base_url)
        heap.freeze_startup_heap()  # as `switchboard api` and the dashboard do at start
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

        async def scenario(clients: int, per_client: int) -> Overhead:
            await _measure(direct, clients, 5)  # warm both paths
            await _measure(through_gateway, clients, 5)
            paired: list[tuple[list[float], list[float]]] = []
            for i in range(rounds):
                # Alternate which side goes first, so drift within a round cancels out.
                if i % 2:
                    gate = await _measure(through_gateway, clients, per_client)
                    base = await _measure(direct, clients, per_client)
                else:
                    base = await _measure(direct, clients, per_client)
                    gate = await _measure(through_gateway, clients, per_client)
                paired.append((base, gate))
                fake.reset_log()  # its log would grow all run; no real provider slows so
            added50, added95, spread = _paired(paired)
            name = f"{clients} client{'s' if clients > 1 else ''}"
            return Overhead(name, stats([x for b, _ in paired for x in b]),
                            stats([x for _, g in paired for x in g]), added50, added95, spread)

        for clients, n in SCENARIOS:
            results.append(asyncio.run(scenario(clients, n)))
        gateway.flush()
        own_us = asyncio.run(_own_cpu_us(runtime, request))
        runtime.close()
    rows = [
        (r.name, f"{r.direct.p50_ms:.2f}", f"{r.gateway.p50_ms:.2f}", f"{r.added_p50_ms:+.2f}",
         f"{r.spread_p50_ms[0]:+.1f}..{r.spread_p50_ms[1]:+.1f}",
         f"{r.gateway.p50_ms / r.direct.p50_ms:.2f}x", f"{r.direct.p95_ms:.2f}",
         f"{r.gateway.p95_ms:.2f}", f"{r.added_p95_ms:+.2f}", r.direct.n)
        for r in results
    ]
    print_table(
        "In-process gateway vs direct litellm call to the same fake (ms; added = median of "
        f"{rounds} paired rounds' differences)",
        ("concurrency", "direct p50", "gateway p50", "added p50", "IQR", "ratio", "direct p95",
         "gateway p95", "added p95", "n"),
        rows,
    )
    print(f"  the gateway's own CPU on the event loop per request (an instant completion "
          f"function instead of litellm, ledger writer excluded): {own_us:.0f} µs")
    return results


async def _instant_completion(**_: object) -> object:
    message = SimpleNamespace(content="Hello team")
    usage = SimpleNamespace(prompt_tokens=10, completion_tokens=3, prompt_tokens_details=None,
                            completion_tokens_details=None)
    return SimpleNamespace(choices=[SimpleNamespace(message=message, finish_reason="stop")],
                           usage=usage)


async def _own_cpu_us(runtime: Runtime, request: ChatRequest, n: int = 3000) -> float:
    """Main-thread CPU per request of a gateway whose upstream answers at once."""
    from core.gateway import Gateway

    gateway = Gateway(sessions=runtime.sessions, catalog=runtime.catalog,
                      cipher=runtime.cipher, completion=_instant_completion,
                      environ={"OPENAI_API_KEY": KEY})
    try:
        for _ in range(200):  # warm the caches
            await gateway.complete(request)
        started = time.thread_time()
        for _ in range(n):
            await gateway.complete(request)
        return (time.thread_time() - started) / n * 1e6
    finally:
        gateway.close()
