"""The HTTP API: added latency over calling the fake provider directly, and throughput.

`switchboard api` runs as its own process (as in production); the clients and the
fake provider run here. Baseline: the same POST sent straight to the fake.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.common import Stats, bench_user, print_table, scratch_env, stats

GPT = "openai/gpt-4o"
KEY = "sk-bench-000000000000"
BODY = {"model": GPT, "messages": [{"role": "user", "content": "Say hello to the team"}],
        "fallbacks": []}


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
    from core import tokens
    from core.clock import utc_now
    from core.runtime import build_runtime

    runtime = build_runtime()
    bench_user(runtime, fake_base)
    with runtime.sessions.begin() as s:
        token, _ = tokens.create_token(s, username="bench", name="bench", actor="bench",
                                       now=utc_now())
    runtime.close()
    return token


async def _load(url: str, headers: dict[str, str], clients: int, total: int
                ) -> tuple[list[float], int, float]:
    samples: list[float] = []
    errors = 0
    per_client = total // clients
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        async def one_client() -> None:
            nonlocal errors
            for _ in range(per_client):
                t0 = time.perf_counter()
                r = await client.post(url, json=BODY, headers=headers)
                samples.append(time.perf_counter() - t0)
                errors += r.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        wall = time.perf_counter() - started
    return samples, errors, wall


def run(requests: int = 640) -> None:
    from tests.fakes import FakeOpenAI

    with scratch_env() as data, FakeOpenAI() as fake:
        token = _prepare(fake.base_url)
        port = _free_port()
        env = {**os.environ, "OPENAI_API_KEY": KEY}
        log = open(Path(data) / "api.log", "w")  # noqa: SIM115  (closed below)
        server = subprocess.Popen(
            [sys.executable, "-m", "core", "api", "--port", str(port), "--log-level", "warning"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            auth = {"Authorization": f"Bearer {token}"}
            direct_url = f"{fake.base_url}/chat/completions"
            direct_auth = {"Authorization": f"Bearer {KEY}"}
            api_url = f"{base}/v1/chat/completions"

            measured_cpu_s = 0.0  # the API's CPU in measured runs, start-up and warm-up excluded

            async def scenario(clients: int, total: int) -> tuple[Stats, Stats, float, int]:
                nonlocal measured_cpu_s
                await _load(direct_url, direct_auth, clients, clients * 3)  # warm up
                await _load(api_url, auth, clients, clients * 3)
                d, _, _ = await _load(direct_url, direct_auth, clients, total)
                cpu_before = _cpu_seconds(server.pid)
                a, errors, wall = await _load(api_url, auth, clients, total)
                measured_cpu_s += _cpu_seconds(server.pid) - cpu_before
                return stats(d), stats(a), total / wall, errors

            rows = []
            throughput = 0.0
            errors_total = 0
            sent = 0
            measured = 0
            for clients in (1, 32):
                total = 300 if clients == 1 else requests
                d, a, rps, errors = asyncio.run(scenario(clients, total))
                sent += total + clients * 3
                measured += total
                errors_total += errors
                throughput = rps
                rows.append((clients, f"{d.p50_ms:.2f}", f"{a.p50_ms:.2f}",
                             f"{a.p50_ms - d.p50_ms:+.2f}", f"{a.p50_ms / d.p50_ms:.2f}x",
                             f"{d.p95_ms:.2f}", f"{a.p95_ms:.2f}", f"{rps:.0f}", errors))
        finally:
            server.terminate()
            server.wait(30)
            log.close()
        from sqlalchemy import func, select

        from core import db
        from core.config import load_settings
        from core.models import RequestRow

        engine = db.make_engine(load_settings().database_url)
        with engine.connect() as conn:
            recorded = conn.execute(select(func.count(RequestRow.id))).scalar_one()
        engine.dispose()
    print_table(
        "HTTP API (separate process) vs POST straight to the fake (ms), non-streamed",
        ("clients", "direct p50", "api p50", "added p50", "ratio", "direct p95", "api p95",
         "api req/s", "errors"),
        rows,
    )
    print(f"  ledger rows after shutdown: {recorded}; requests sent to the API: {sent}; "
          f"errors: {errors_total}; throughput at 32 clients: {throughput:.0f} req/s; "
          f"API process CPU per measured request: "
          f"{measured_cpu_s / max(1, measured) * 1000:.1f} ms")
