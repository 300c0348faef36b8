"""A comparison round's wall time against its slowest model alone.

Four fake models answer with different delays. The baseline is the slowest model
streamed alone through the same SyncGateway; the round streams all four at once
(core.compare.rounds.run_round, as the page and batch runs do). Target: ratio <= 1.15.
"""

from __future__ import annotations

import statistics
import time

from bench.common import bench_user, print_table, scratch_env

KEY = "sk-bench-000000000000"
# model -> (first-token delay s, delay between tokens s); 8 tokens each.
DELAYS = {
    "openai/gpt-4o-mini": (0.05, 0.02),
    "openai/gpt-4.1-mini": (0.10, 0.04),
    "openai/gpt-4.1": (0.15, 0.06),
    "openai/gpt-4o": (0.20, 0.08),
}
SLOWEST = "openai/gpt-4o"


def run(repeats: int = 7) -> float:
    from core.compare.rounds import RoundSettings, build_requests, run_round
    from core.gateway.runtime import build_runtime
    from core.gateway.sync_bridge import SyncGateway
    from core.request import Caller, ChatRequest
    from tests.fakes import FakeOpenAI, Reply

    with scratch_env(), FakeOpenAI() as fake:
        runtime = build_runtime(environ={"OPENAI_API_KEY": KEY})
        user = bench_user(runtime, fake.base_url)
        for model, (first, between) in DELAYS.items():
            fake.configure(
                model.split("/", 1)[1], default=Reply(first_token_delay=first, token_delay=between)
            )
        gateway = SyncGateway(runtime.gateway, thread_name="bench-compare")
        caller = Caller(user.id, user.username, user.role)
        settings = RoundSettings(models=tuple(DELAYS))
        everyone = build_requests(caller, settings, list(DELAYS), "Compare yourselves")
        alone = build_requests(caller, settings, [SLOWEST], "Compare yourselves")

        def timed(requests: list[ChatRequest]) -> float:
            t0 = time.perf_counter()
            answers = run_round(gateway, requests)
            elapsed = time.perf_counter() - t0
            assert all(a.error is None for a in answers), [a.error for a in answers]
            return elapsed

        timed(everyone)  # warm litellm and the connection pools
        base: list[float] = []
        rounds: list[float] = []
        for _ in range(repeats):  # interleaved, so machine noise hits both alike
            base.append(timed(alone))
            rounds.append(timed(everyone))
        gateway.close()
        runtime.close()
    b, r = statistics.median(base), statistics.median(rounds)
    ratio = r / b
    print_table(
        "Comparison round (4 models, different delays) vs its slowest model alone (ms)",
        ("what", "slowest alone p50", "round p50", "ratio", "target", "n"),
        [
            (
                "4 models in parallel",
                f"{b * 1000:.0f}",
                f"{r * 1000:.0f}",
                f"{ratio:.3f}",
                "<= 1.15",
                repeats,
            )
        ],
    )
    return ratio


if __name__ == "__main__":
    run()
