"""Added latency of the in-process gateway over calling the same fake provider directly.

Both sides make the same litellm call (core.upstream.litellm_calls.default_completion: litellm's
own HTTP handler, its success logging and response metadata skipped) to the same
loopback fake (in a process of its own, bench/fake_process.py, as a real provider
would be), so the difference is Switchboard's own work: routing, key lookup, rate
limit, budget reservation, breaker and retry bookkeeping, and queueing the ledger rows.

Latency is measured below saturation: 32 clients of a provider that answers at once
would keep the one event loop 100% busy, and each request's latency would then be
the CPU of the 31 requests queued with it (Little's law), which is throughput, not
added latency. So the 32-client latency scenario gives the fake a model's response
time and spreads the clients' starts over it; a third scenario drives an instant
fake with 32 clients in lockstep and reports that saturation throughput on both sides.
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
    from core.gateway.runtime import Runtime
    from core.request import ChatRequest

GPT = "openai/gpt-4o"
KEY = "sk-bench-000000000000"


async def _measure(
    call: Callable[[], Awaitable[object]], clients: int, per_client: int, spread_s: float = 0.0
) -> list[float]:
    """Each client's request latencies; client i starts i/clients of ``spread_s`` late."""
    samples: list[float] = []

    async def client(i: int) -> None:
        await asyncio.sleep(spread_s * i / clients)
        for _ in range(per_client):
            t0 = time.perf_counter()
            await call()
            samples.append(time.perf_counter() - t0)

    await asyncio.gather(*(client(i) for i in range(clients)))
    return samples


@dataclass(frozen=True)
class Scenario:
    name: str
    clients: int
    per_client: int  # requests per client per round and side
    provider_s: float  # how long the fake takes to answer
    saturated: bool = False  # clients in lockstep on an instant fake: a throughput test


@dataclass(frozen=True)
class Overhead:
    """One concurrency level: pooled samples per side and the paired added latency."""

    scenario: Scenario
    direct: Stats
    gateway: Stats
    added_p50_ms: float  # median over rounds of (gateway p50 - direct p50) in that round
    added_p95_ms: float
    spread_p50_ms: tuple[float, float]  # quartiles of those per-round p50 differences
    direct_rps: float  # requests per second, median over rounds
    gateway_rps: float


def _paired(
    rounds: list[tuple[list[float], list[float]]],
) -> tuple[float, float, tuple[float, float]]:
    """Median per-round differences: noise that spans a round hits both sides alike."""
    d50 = [stats(g).p50_ms - stats(b).p50_ms for b, g in rounds]
    d95 = [stats(g).p95_ms - stats(b).p95_ms for b, g in rounds]
    q1, _, q3 = statistics.quantiles(d50, n=4)
    return statistics.median(d50), statistics.median(d95), (q1, q3)


# 0.5 s is a fast hosted model's time for a short non-streamed answer. Saturated, each
# request waits for the CPU of the 31 others, so its "added" is about 32 times the
# gateway's CPU per request, and every hiccup of the machine is multiplied as well.
SCENARIOS: tuple[Scenario, ...] = (
    Scenario("1 client", 1, 128, 0.0),
    Scenario("32 clients", 32, 6, 0.5),
    Scenario("32 clients", 32, 8, 0.25),
    Scenario("32 clients, saturated", 32, 16, 0.0, saturated=True),
)


def run(rounds: int = 12, scenarios: tuple[Scenario, ...] = SCENARIOS) -> list[Overhead]:
    """``rounds`` paired rounds of each scenario."""
    from core.api import heap
    from core.gateway.runtime import build_runtime
    from core.request import Caller, ChatRequest
    from core.upstream.litellm_calls import default_completion

    results: list[Overhead] = []
    with scratch_env(), fake_openai_process() as fake:
        runtime = build_runtime(environ={"OPENAI_API_KEY": KEY})
        user = bench_user(runtime, fake.base_url)
        heap.freeze_startup_heap()  # as `switchboard api` and the dashboard do at start
        gateway = runtime.gateway
        caller = Caller(user.id, user.username, user.role)
        messages = ({"role": "user", "content": "Say hello to the team"},)
        request = ChatRequest(caller=caller, messages=messages, model=GPT, fallbacks=())

        acompletion = default_completion()

        async def direct() -> object:
            return await acompletion(
                model=GPT,
                messages=list(messages),
                api_base=fake.base_url,
                api_key=KEY,
                max_retries=0,
                max_tokens=16384,
            )

        async def through_gateway() -> object:
            return await gateway.complete(request)

        async def timed(
            call: Callable[[], Awaitable[object]], sc: Scenario
        ) -> tuple[list[float], float]:
            started = time.perf_counter()
            spread = 0.0 if sc.saturated else sc.provider_s
            samples = await _measure(call, sc.clients, sc.per_client, spread)
            return samples, len(samples) / (time.perf_counter() - started)

        async def scenario(sc: Scenario) -> Overhead:
            await _measure(direct, sc.clients, 2)  # warm both paths
            await _measure(through_gateway, sc.clients, 2)
            paired: list[tuple[list[float], list[float]]] = []
            rates: list[tuple[float, float]] = []
            for i in range(rounds):
                # Alternate which side goes first, so drift within a round cancels out.
                if i % 2:
                    gate, gate_rps = await timed(through_gateway, sc)
                    base, base_rps = await timed(direct, sc)
                else:
                    base, base_rps = await timed(direct, sc)
                    gate, gate_rps = await timed(through_gateway, sc)
                paired.append((base, gate))
                rates.append((base_rps, gate_rps))
                fake.reset_log()  # its log would grow all run; no real provider slows so
            added50, added95, spread = _paired(paired)
            return Overhead(
                sc,
                stats([x for b, _ in paired for x in b]),
                stats([x for _, g in paired for x in g]),
                added50,
                added95,
                spread,
                statistics.median(b for b, _ in rates),
                statistics.median(g for _, g in rates),
            )

        async def scenario_on_its_loop(sc: Scenario) -> Overhead:
            try:
                return await scenario(sc)
            finally:
                await gateway.aclose()  # the upstream clients made on this loop

        for sc in scenarios:
            fake.set_delay(sc.provider_s)
            results.append(asyncio.run(scenario_on_its_loop(sc)))
        gateway.flush()
        own_us = asyncio.run(_own_cpu_us(runtime, request))
        runtime.close()
    rows = [
        (
            r.scenario.name,
            f"{r.scenario.provider_s * 1000:.0f}",
            f"{r.direct.p50_ms:.2f}",
            f"{r.gateway.p50_ms:.2f}",
            f"{r.added_p50_ms:+.2f}",
            f"{r.spread_p50_ms[0]:+.1f}..{r.spread_p50_ms[1]:+.1f}",
            f"{r.gateway.p50_ms / r.direct.p50_ms:.3f}x",
            f"{r.direct.p95_ms:.2f}",
            f"{r.gateway.p95_ms:.2f}",
            f"{r.added_p95_ms:+.2f}",
            r.direct.n,
        )
        for r in results
    ]
    print_table(
        "In-process gateway vs direct litellm call to the same fake (ms; added = median of "
        f"{rounds} paired rounds' differences; targets: added p50 <= 2, p95 <= 5, unsaturated)",
        (
            "concurrency",
            "provider",
            "direct p50",
            "gateway p50",
            "added p50",
            "IQR",
            "ratio",
            "direct p95",
            "gateway p95",
            "added p95",
            "n",
        ),
        rows,
    )
    for r in results:
        if r.scenario.saturated:
            print(
                f"  {r.scenario.name}: litellm alone {r.direct_rps:.0f} req/s, through the "
                f"gateway {r.gateway_rps:.0f} req/s ({r.gateway_rps / r.direct_rps:.2f}x); "
                "latency there is queueing for the CPU, not a target"
            )
    print(
        f"  the gateway's own CPU on the event loop per request (an instant completion "
        f"function instead of litellm, ledger writer excluded): {own_us:.0f} µs"
    )
    return results


async def _instant_completion(**_: object) -> object:
    message = SimpleNamespace(content="Hello team")
    usage = SimpleNamespace(
        prompt_tokens=10,
        completion_tokens=3,
        prompt_tokens_details=None,
        completion_tokens_details=None,
    )
    return SimpleNamespace(
        choices=[SimpleNamespace(message=message, finish_reason="stop")], usage=usage
    )


async def _own_cpu_us(runtime: Runtime, request: ChatRequest, n: int = 3000) -> float:
    """Main-thread CPU per request of a gateway whose upstream answers at once."""
    from core.gateway.gateway import Gateway

    gateway = Gateway(
        sessions=runtime.sessions,
        catalog=runtime.catalog,
        cipher=runtime.cipher,
        completion=_instant_completion,
        environ={"OPENAI_API_KEY": KEY},
    )
    try:
        for _ in range(200):  # warm the caches
            await gateway.complete(request)
        started = time.thread_time()
        for _ in range(n):
            await gateway.complete(request)
        return (time.thread_time() - started) / n * 1e6
    finally:
        gateway.close()
