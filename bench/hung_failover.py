"""How long a request waits on a hung provider before the next model answers.

The chain's first model hangs: the fake reads the request and never answers (or sends a
200 head and then nothing). A non-streamed request used to wait for the whole total
timeout (300 s by default) and never fail over; it now streams upstream like a streamed
request, so both fail over at the first-token timeout. The route's first-token timeout
here is 2 s, its total timeout 300 s; the figure to read is each request's time to its
answer against the 2 s (target: under first-token timeout + 1 s). The breaker is set not
to open, so every request meets the hang.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from bench.common import bench_user, print_table, scratch_env

KEY = "sk-bench-000000000000"
FIRST_TOKEN_S = 2.0
TOTAL_S = 300.0
HUNG = "openai/gpt-4o"
NEXT = "openai/gpt-4o-mini"


def run(repeats: int = 3) -> dict[str, float]:
    from core.clock import utc_now
    from core.gateway.gateway import Gateway, GatewaySettings
    from core.gateway.runtime import build_runtime
    from core.request import Caller, ChatRequest
    from core.settings import routes
    from core.upstream.breaker import BreakerPolicy
    from tests.fakes import FakeOpenAI, Hang

    results: dict[str, float] = {}
    rows: list[tuple[object, ...]] = []
    with scratch_env(), FakeOpenAI() as fake:
        runtime = build_runtime(environ={"OPENAI_API_KEY": KEY})
        user = bench_user(runtime, fake.base_url)
        with runtime.sessions.begin() as s:
            routes.set_route(
                s,
                scope="org",
                scope_id=0,
                models=[HUNG, NEXT],
                known_model=lambda m: True,
                actor="bench",
                now=utc_now(),
                options=routes.RouteOptions(
                    first_token_timeout_s=FIRST_TOKEN_S, total_timeout_s=TOTAL_S
                ),
            )
        gateway = Gateway(
            sessions=runtime.sessions,
            catalog=runtime.catalog,
            cipher=runtime.cipher,
            environ={"OPENAI_API_KEY": KEY},
            # Never judged (fewer calls than min_calls): every request meets the hang.
            settings=GatewaySettings(breaker=BreakerPolicy(min_calls=1000, window_calls=1000)),
        )
        caller = Caller(user.id, user.username, user.role)
        messages = ({"role": "user", "content": "Say hello to the team"},)

        async def one(stream: bool) -> float:
            request = ChatRequest(caller=caller, messages=messages, model="auto", stream=stream)
            started = time.perf_counter()
            summary = None
            async for event in gateway.stream(request):
                summary = getattr(event, "summary", summary)
            elapsed = time.perf_counter() - started
            assert summary is not None and summary.model == NEXT, summary
            return elapsed

        async def measure() -> None:
            try:
                for hang, label in ((Hang(), "no answer"), (Hang(True), "200 head, then nothing")):
                    for stream in (False, True):
                        fake.configure("gpt-4o", default=hang)
                        samples = [await one(stream) for _ in range(repeats)]
                        worst = max(samples)
                        kind = "streamed" if stream else "non-streamed"
                        results[f"{kind}, {label}"] = worst
                        rows.append(
                            (
                                kind,
                                label,
                                f"{statistics.median(samples):.2f}",
                                f"{worst:.2f}",
                                f"{FIRST_TOKEN_S:g}",
                                f"{TOTAL_S:g}",
                                "met" if worst < FIRST_TOKEN_S + 1 else "MISSED",
                                repeats,
                            )
                        )
            finally:
                await gateway.aclose()

        asyncio.run(measure())
        gateway.close()
        runtime.close()
    print_table(
        "Failover from a hung provider to the next model (s; target: under the first-token "
        "timeout + 1 s, not the total timeout)",
        ("request", "hung provider", "p50", "max", "first-token", "total", "target", "n"),
        rows,
    )
    return results


if __name__ == "__main__":
    run()
