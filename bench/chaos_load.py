"""What `make chaos` drives and reads: a `switchboard api` process it may kill, clients
that keep calling it, and the ledger and budgets it reads back afterwards."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import httpx

from bench.api_http import _free_port
from bench.common import bench_user

GPT = "openai/gpt-4o"
KEY = "sk-chaos-00000000000000"
MAX_TOKENS = 16  # a small worst case, so a hard budget holds many requests at once
BODY: Mapping[str, Any] = {
    "model": GPT,
    "messages": [{"role": "user", "content": "Say hello to the team"}],
    "fallbacks": [],
    "max_tokens": MAX_TOKENS,
}
INTERRUPTED = "interrupted"  # the ledger status of a request whose outcome was lost
ANSWERED = ("success", "success-after-fallback", "partial", INTERRUPTED)


class ApiProcess:
    """`python -m core api` on a free loopback port, with a log file of its own."""

    def __init__(self, env: Mapping[str, str], log: Path) -> None:
        self.port = _free_port()
        self._env = dict(env)
        self._log_path = log
        self._log: IO[str] | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._log = open(self._log_path, "a")  # noqa: SIM115  (closed in stop/kill)
        args = ["-m", "core", "api", "--port", str(self.port), "--log-level", "warning"]
        self.proc = subprocess.Popen(
            [sys.executable, *args], env=self._env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self._log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"switchboard api exited at start:\n{tail}")
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.base} did not become healthy within 90 s")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, as a crash or an OOM kill."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM: the graceful stop, which writes what is queued."""
        self._end(signal.SIGTERM)

    def _end(self, how: signal.Signals) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(how)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass
class Load:
    """``clients`` loops posting one chat completion after another until stopped."""

    url: str
    token: str
    clients: int = 16
    statuses: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)  # refusals by status and error code
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=self.clients)
        headers = {"Authorization": f"Bearer {self.token}"}
        async with httpx.AsyncClient(limits=limits, timeout=60, headers=headers) as client:
            await asyncio.gather(*(self._client(client) for _ in range(self.clients)))

    async def _client(self, client: httpx.AsyncClient) -> None:
        while not self._stop.is_set():
            try:
                r = await client.post(f"{self.url}/v1/chat/completions", json=dict(BODY))
                self.statuses[str(r.status_code)] += 1
                if r.status_code != 200:
                    self.codes[f"{r.status_code} {_error_code(r)}"] += 1
            except httpx.HTTPError:
                self.statuses["no answer"] += 1  # refused or dropped: the API is down
                await asyncio.sleep(0.05)


def _error_code(r: httpx.Response) -> str:
    """The OpenAI-style ``error.code`` (or type) of a refusal, so a 503 is told apart."""
    try:
        error = r.json().get("error") or {}
        return str(error.get("code") or error.get("type") or "?")
    except (ValueError, AttributeError):
        return "not JSON"


def journal_backlog(url: str) -> int | None:
    """Rows and orphans the API's journal still holds for the database (its /health);
    None while the API cannot say."""
    try:
        journal = httpx.get(f"{url}/health", timeout=5).json().get("journal") or {}
        return int(journal.get("queued", 0)) + int(journal.get("orphans", 0))
    except (httpx.HTTPError, ValueError, AttributeError):
        return None


async def requests(url: str, token: str, clients: int, total: int) -> Counter[str]:
    """``total`` requests shared by ``clients`` clients; the statuses they got."""
    statuses: Counter[str] = Counter()
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=60, headers=headers) as client:

        async def one(n: int) -> None:
            for _ in range(n):
                r = await client.post(f"{url}/v1/chat/completions", json=dict(BODY))
                statuses[str(r.status_code)] += 1

        await asyncio.gather(*(one(total // clients) for _ in range(clients)))
    return statuses


async def direct_with_retries(
    base_url: str, clients: int, seconds: float, retries: int
) -> tuple[int, int]:
    """(requests, successes) of clients calling the provider itself with the gateway's
    retry policy: up to ``retries`` retries of a 5xx/429, with the same backoff."""
    import random

    from core.gateway.retry import RetryPolicy

    policy, rng = RetryPolicy(max_retries=retries), random.Random(7)
    done = ok = 0
    deadline = time.monotonic() + seconds
    body = {k: v for k, v in BODY.items() if k != "fallbacks"} | {"model": "gpt-4o"}
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(timeout=60, headers=headers) as client:

        async def one() -> None:
            nonlocal done, ok
            while time.monotonic() < deadline:
                for attempt in range(retries + 1):
                    if attempt:
                        await asyncio.sleep(policy.delay(attempt, None, rng))
                    r = await client.post(f"{base_url}/chat/completions", json=body)
                    if r.status_code == 200:
                        ok += 1
                        break
                    if r.status_code < 500 and r.status_code != 429:
                        break
                done += 1

        await asyncio.gather(*(one() for _ in range(clients)))
    return done, ok


@dataclass(frozen=True)
class Books:
    """What the database says happened, read after the run."""

    rows: Counter[str]  # requests rows by status
    recorded_micros: int  # the ledger's cost of rows that reached the provider
    spent_micros: int  # the user's budget: settled spend
    reserved_micros: int  # ... and holds still open

    @property
    def answered_rows(self) -> int:
        return sum(self.rows[s] for s in ANSWERED)


def read_books(db_url: str, user_id: int) -> Books:
    from sqlalchemy import func, select

    from core.store import db
    from core.store.tables import Budget, RequestRow

    engine = db.make_engine(db_url)
    try:
        with engine.connect() as conn:
            by_status = conn.execute(
                select(RequestRow.status, func.count(), func.sum(RequestRow.cost_micros)).group_by(
                    RequestRow.status
                )
            ).all()
            budget = conn.execute(
                select(Budget.spent_micros, Budget.reserved_micros).where(
                    Budget.scope == "user", Budget.scope_key == str(user_id)
                )
            ).first()
    finally:
        engine.dispose()
    rows = Counter({status: int(n) for status, n, _ in by_status})
    recorded = sum(int(cost or 0) for status, _, cost in by_status if status in ANSWERED)
    spent, reserved = (int(budget[0]), int(budget[1])) if budget else (0, 0)
    return Books(rows, recorded, spent, reserved)


def billed_micros(stats: Mapping[str, int]) -> int:
    """What the fake provider billed: its prompt and completion tokens at gpt-4o's price."""
    from core.money.catalog import load_catalog

    info = load_catalog().get(GPT)
    assert info is not None and info.input_price is not None and info.output_price is not None
    # Catalog prices are USD per 1M tokens, which is micro-dollars per token.
    cost = (
        info.input_price * stats["prompt_tokens"] + info.output_price * stats["completion_tokens"]
    )
    return int(cost.to_integral_value())


def prepare(fake_base: str, budget_usd: Decimal | None) -> tuple[str, int]:
    """User "bench" with a token, openai pointed at the fake, and an optional hard budget."""
    from core.accounts import tokens
    from core.clock import utc_now
    from core.gateway.runtime import build_runtime
    from core.money import budgets

    runtime = build_runtime()
    try:
        user = bench_user(runtime, fake_base)
        with runtime.sessions.begin() as s:
            token, _ = tokens.create_token(
                s, username="bench", name="chaos", actor="chaos", now=utc_now()
            )
            if budget_usd is not None:
                limit = int(budget_usd * 1_000_000)
                budgets.set_budget(s, "user", str(user.id), limit, True, "chaos", utc_now())
    finally:
        runtime.close()
    return token, user.id


def api_env() -> dict[str, str]:
    return {**os.environ, "OPENAI_API_KEY": KEY}


def usd(micros: int) -> str:
    return f"${Decimal(micros) / 1_000_000:.4f}"
