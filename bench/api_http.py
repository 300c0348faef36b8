"""The HTTP API: added latency over calling the fake provider directly, and throughput.

`switchboard api` runs as its own process (as in production), the fake provider in
another (bench/fake_process.py), and the clients here. Baseline: the
same POST sent straight to the fake. Rounds are paired and alternate which side goes
first; "added" is the median of the per-round differences. As in
gateway_overhead, 32-client latency is measured with a fake that takes a model's time
to answer and clients spread over it; throughput with an instant fake and 32 clients
in lockstep, which saturates the API process.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple

import httpx

from bench.common import Stats, bench_user, print_table, scratch_env, stats
from bench.fake_process import FakeProcess, fake_openai_process

GPT = "openai/gpt-4o"
KEY = "sk-bench-000000000000"
BODY = {
    "model": GPT,
    "messages": [{"role": "user", "content": "Say hello to the team"}],
    "fallbacks": [],
}


def _cpu_seconds(pid: int) -> float:
    """User+system CPU a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prepare(fake_base: str) -> str:
    """User, token and an override pointing openai at the fake. Returns the token."""
    from core.accounts import tokens
    from core.clock import utc_now
    from core.gateway.runtime import build_runtime

    runtime = build_runtime()
    bench_user(runtime, fake_base)
    with runtime.sessions.begin() as s:
        token, _ = tokens.create_token(
            s, username="bench", name="bench", actor="bench", now=utc_now()
        )
    runtime.close()
    return token


async def _load(
    url: str, headers: dict[str, str], clients: int, total: int, spread_s: float = 0.0
) -> tuple[list[float], int, float]:
    """Latencies, error count and wall time; client i starts i/clients of spread_s late."""
    samples: list[float] = []
    errors = 0
    per_client = total // clients
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one_client(i: int) -> None:
            nonlocal errors
            await asyncio.sleep(spread_s * i / clients)
            for _ in range(per_client):
                t0 = time.perf_counter()
                r = await client.post(url, json=BODY, headers=headers)
                samples.append(time.perf_counter() - t0)
                errors += r.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(one_client(i) for i in range(clients)))
        wall = time.perf_counter() - started
    return samples, errors, wall


@dataclass(frozen=True)
class Scenario:
    clients: int
    per_round: int  # requests per round and side
    provider_s: float  # how long the fake takes to answer
    rounds: int


# The last one saturates the API with an instant fake: the throughput run.
SCENARIOS: tuple[Scenario, ...] = (
    Scenario(1, 60, 0.0, 6),
    Scenario(32, 64, 0.5, 6),
    Scenario(32, 128, 0.25, 6),
    Scenario(32, 320, 0.0, 4),
)
# The bare proxy, at the unsaturated extremes.
FLOOR_SCENARIOS: tuple[Scenario, ...] = (Scenario(1, 60, 0.0, 4), Scenario(32, 64, 0.5, 4))


class Paired(NamedTuple):
    direct: Stats
    via: Stats
    added_p50_ms: float
    added_p95_ms: float
    via_rps: float
    errors: int
    cpu_s: float  # the process behind ``via_url``, measured rounds only


async def _paired(
    via_url: str,
    via_auth: dict[str, str],
    direct_url: str,
    direct_auth: dict[str, str],
    sc: Scenario,
    pid: int,
) -> Paired:
    """Warm-up, then rounds alternating which side goes first; added = median difference."""
    spread = sc.provider_s  # clients start spread over one answer time
    await _load(direct_url, direct_auth, sc.clients, sc.clients * 3)
    await _load(via_url, via_auth, sc.clients, sc.clients * 3)
    paired: list[tuple[list[float], list[float]]] = []
    rates: list[float] = []
    errors = 0
    cpu_s = 0.0
    for i in range(sc.rounds):
        # Alternate which side goes first, so drift within a round cancels out.
        if i % 2:
            d, _, _ = await _load(direct_url, direct_auth, sc.clients, sc.per_round, spread)
        cpu_before = _cpu_seconds(pid)
        a, failed, wall = await _load(via_url, via_auth, sc.clients, sc.per_round, spread)
        cpu_s += _cpu_seconds(pid) - cpu_before
        if not i % 2:
            d, _, _ = await _load(direct_url, direct_auth, sc.clients, sc.per_round, spread)
        paired.append((d, a))
        rates.append(sc.per_round / wall)
        errors += failed
    d50 = [stats(a).p50_ms - stats(d).p50_ms for d, a in paired]
    d95 = [stats(a).p95_ms - stats(d).p95_ms for d, a in paired]
    return Paired(
        stats([x for d, _ in paired for x in d]),
        stats([x for _, a in paired for x in a]),
        statistics.median(d50),
        statistics.median(d95),
        statistics.median(rates),
        errors,
        cpu_s,
    )


def _start_server(args: list[str], env: dict[str, str], log: IO[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *args], env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait_healthy(base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{base} did not become healthy within 60 s")


def _hop_floor(fake: FakeProcess, data: Path) -> list[tuple[object, ...]]:
    """The bare proxy of bench/hop_floor.py against the same fake, same pairing."""
    port = _free_port()
    with open(data / "floor.log", "w") as log:
        server = _start_server(
            ["-m", "bench.hop_floor", str(port), fake.base_url], dict(os.environ), log
        )
        try:
            _wait_healthy(f"http://127.0.0.1:{port}")
            auth = {"Authorization": f"Bearer {KEY}"}
            rows: list[tuple[object, ...]] = []
            for sc in FLOOR_SCENARIOS:
                fake.set_delay(sc.provider_s)
                r = asyncio.run(
                    _paired(
                        f"http://127.0.0.1:{port}/v1/chat/completions",
                        auth,
                        f"{fake.base_url}/chat/completions",
                        auth,
                        sc,
                        server.pid,
                    )
                )
                rows.append(
                    (
                        sc.clients,
                        f"{sc.provider_s * 1000:.0f}",
                        f"{r.direct.p50_ms:.2f}",
                        f"{r.via.p50_ms:.2f}",
                        f"{r.added_p50_ms:+.2f}",
                        f"{r.added_p95_ms:+.2f}",
                        r.errors,
                    )
                )
            return rows
        finally:
            server.terminate()
            server.wait(30)


def run() -> None:
    with scratch_env() as data, fake_openai_process() as fake:
        token = _prepare(fake.base_url)
        port = _free_port()
        env = {**os.environ, "OPENAI_API_KEY": KEY}
        with open(data / "api.log", "w") as log:
            server = _start_server(
                ["-m", "core", "api", "--port", str(port), "--log-level", "warning"], env, log
            )
            try:
                base = f"http://127.0.0.1:{port}"
                _wait_healthy(base)
                auth = {"Authorization": f"Bearer {token}"}
                direct_url = f"{fake.base_url}/chat/completions"
                direct_auth = {"Authorization": f"Bearer {KEY}"}
                api_url = f"{base}/v1/chat/completions"
                measured_cpu_s = 0.0  # the API's, measured rounds only (not start-up, warm-up)
                sent = measured = errors_total = 0
                throughput = 0.0
                rows = []
                for sc in SCENARIOS:
                    fake.set_delay(sc.provider_s)
                    r = asyncio.run(_paired(api_url, auth, direct_url, direct_auth, sc, server.pid))
                    fake.reset_log()  # so the fake's heap does not grow all run
                    measured_cpu_s += r.cpu_s
                    sent += sc.clients * 3 + sc.per_round * sc.rounds
                    measured += sc.per_round * sc.rounds
                    errors_total += r.errors
                    throughput = r.via_rps
                    d, a = r.direct, r.via
                    rows.append(
                        (
                            sc.clients,
                            f"{sc.provider_s * 1000:.0f}",
                            f"{d.p50_ms:.2f}",
                            f"{a.p50_ms:.2f}",
                            f"{r.added_p50_ms:+.2f}",
                            f"{a.p50_ms / d.p50_ms:.3f}x",
                            f"{d.p95_ms:.2f}",
                            f"{a.p95_ms:.2f}",
                            f"{r.added_p95_ms:+.2f}",
                            f"{r.via_rps:.0f}",
                            r.errors,
                        )
                    )
            finally:
                server.terminate()
                server.wait(30)
        floor = _hop_floor(fake, data)
        from sqlalchemy import func, select

        from core.config import load_settings
        from core.store import db
        from core.store.tables import RequestRow

        engine = db.make_engine(load_settings().database_url)
        with engine.connect() as conn:
            recorded = conn.execute(select(func.count(RequestRow.id))).scalar_one()
        engine.dispose()
    print_table(
        "HTTP API (separate process) vs POST straight to the fake (ms), non-streamed; "
        "target: added p50 <= 5, unsaturated; the last row saturates the API for throughput",
        (
            "clients",
            "provider",
            "direct p50",
            "api p50",
            "added p50",
            "ratio",
            "direct p95",
            "api p95",
            "added p95",
            "api req/s",
            "errors",
        ),
        rows,
    )
    print(
        f"  ledger rows after shutdown: {recorded}; requests sent to the API: {sent}; "
        f"errors: {errors_total}; throughput at 32 clients: {throughput:.0f} req/s; "
        f"API process CPU per measured request: "
        f"{measured_cpu_s / max(1, measured) * 1000:.1f} ms"
    )
    print_table(
        "The hop alone: a bare proxy (uvicorn + one aiohttp session, no gateway; "
        "bench/hop_floor.py) vs POST straight to the fake (ms). The API's added latency "
        "less this is Switchboard's own work",
        ("clients", "provider", "direct p50", "proxy p50", "added p50", "added p95", "errors"),
        floor,
    )
