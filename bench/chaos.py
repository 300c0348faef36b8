"""`make chaos`: faults injected into a running `switchboard api`, and what they cost.

Bounded, loopback-only scenarios, each against `switchboard api` in a process of its own
and the fake OpenAI provider in another (bench/fake_process.py), whose log is the truth
of what the provider answered and billed:

(a) SIGKILL under 16 concurrent clients, then a restart: answered requests against
    ledger rows (status ``interrupted`` included), billed cost against the budget.
(b) PostgreSQL (started here, as the tests start it) stopped for 20 s under load, with a
    hard budget: answered against recorded after recovery, overspend, HTTP statuses.
(c) The provider failing 75% of calls for 10 s: the gateway's success rate against
    clients calling the provider directly with the same retries; and a provider fully
    down, skipped within a bounded number of calls.

Prints one table with the targets beside the figures. Not a test: a target missed is
shown as missed.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path

from bench.chaos_load import (
    ApiProcess,
    Books,
    Load,
    api_env,
    billed_micros,
    direct_with_retries,
    journal_backlog,
    prepare,
    read_books,
    requests,
    usd,
)
from bench.common import print_table, scratch_env
from bench.fake_process import FakeProcess, fake_openai_process

Row = tuple[str, str, str, str, str]  # scenario, measure, figure, target, met
SETTLE_S = 90.0  # how long recovery may take after a fault before the books are read


def _met(ok: bool) -> str:
    return "yes" if ok else "NO"


def _statuses(counts: Counter[str]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "none"


async def _load_while(load: Load, timeline: Callable[[], object]) -> None:
    """Run the clients while ``timeline`` (blocking: kills, stops) runs in a thread."""
    clients = asyncio.create_task(load.run())
    try:
        await asyncio.to_thread(timeline)
    finally:
        load.stop()
        await clients


def _settle(api: ApiProcess, db_url: str, user_id: int) -> float:
    """Wait until the running API has recovered, or SETTLE_S; returns the seconds it took.

    Recovered: its journal is empty (every parked row replayed, every dead process's
    request recorded as interrupted: the replay runs in a background loop that backs off
    to 15 s while the database is away) and no budget hold is open. Counting earlier
    would report as lost what is only waiting in the journal.
    """
    started = time.monotonic()
    while time.monotonic() - started < SETTLE_S:
        if journal_backlog(api.base) == 0 and not read_books(db_url, user_id).reserved_micros:
            break
        time.sleep(0.5)
    return time.monotonic() - started


def _journal_left(data: Path) -> int:
    """Records still in the data folder's ledger journal once the API has stopped."""
    from core.store.journal import SUFFIX, parse

    return sum(len(parse(p.read_bytes())) for p in (data / "journal").glob(f"*{SUFFIX}"))


def _accounting_rows(
    name: str, fake: FakeProcess, books: Books, load: Load, settled_s: float, left: int
) -> list[Row]:
    statuses = load.statuses
    stats = fake.stats()
    billed = billed_micros(stats)
    unaccounted = max(0, stats["answered"] - books.answered_rows)
    missing = max(0, billed - books.spent_micros)
    errors = statuses["500"]
    return [
        (name, "answered by the provider (its log)", str(stats["answered"]), "", ""),
        (
            name,
            "ledger rows of answered requests (incl. interrupted)",
            f"{books.answered_rows} ({books.rows['interrupted']} interrupted)",
            "",
            "",
        ),
        (name, "answered, unaccounted", str(unaccounted), "0", _met(unaccounted == 0)),
        (
            name,
            "recovery: journal empty, no hold open (after the fault)",
            f"{settled_s:.1f} s",
            f"< {SETTLE_S:.0f} s",
            _met(settled_s < SETTLE_S),
        ),
        (name, "journal records left after the stop", str(left), "0", _met(left == 0)),
        (name, "billed by the provider", usd(billed), "", ""),
        (
            name,
            "ledger cost / budget spent / still held",
            f"{usd(books.recorded_micros)} / {usd(books.spent_micros)} / "
            f"{usd(books.reserved_micros)}",
            "",
            "",
        ),
        (name, "billed, missing from the budget", usd(missing), "$0", _met(missing == 0)),
        (
            name,
            "budget spent above billed (interrupted rows' worst-case estimates)",
            usd(max(0, books.spent_micros - billed)),
            "",
            "",
        ),
        (name, "HTTP statuses clients got", _statuses(statuses), "", ""),
        (name, "refusals by error code", _statuses(load.codes), "", ""),
        (name, "HTTP 500s", str(errors), "0", _met(errors == 0)),
    ]


def kill_scenario() -> list[Row]:
    name = "(a) SIGKILL"
    with scratch_env() as data, fake_openai_process() as fake:
        fake.set_delay(0.3)  # answers take a model's time, so some are in flight at the kill
        token, user_id = prepare(fake.base_url, Decimal(100))
        api = ApiProcess(api_env(), data / "api.log")
        api.start()
        asyncio.run(requests(api.base, token, 16, 32))  # warm: litellm imported, pools open
        load = Load(api.base, token)

        def timeline() -> None:
            time.sleep(4)
            api.kill()
            time.sleep(1)

        asyncio.run(_load_while(load, timeline))
        api.start()  # the restart is when a crash's leftovers can be recovered
        from core.config import load_settings

        db_url = load_settings().database_url
        settled_s = _settle(api, db_url, user_id)
        api.stop()
        books = read_books(db_url, user_id)
        return _accounting_rows(name, fake, books, load, settled_s, _journal_left(data))


def outage_scenario() -> list[Row]:
    name = "(b) PostgreSQL down 20 s"
    from tests.support.postgres import LocalCluster, PostgresServer, find_pg_bin

    bin_dir = find_pg_bin()
    if bin_dir is None:
        return [(name, "skipped: PostgreSQL binaries not found", "", "", "NO")]
    cluster = LocalCluster(bin_dir)
    try:
        server = PostgresServer(cluster.start())
        db_url = server.url(server.create_database())
        with scratch_env() as data, fake_openai_process() as fake:
            os.environ["SWITCHBOARD_DB_URL"] = db_url
            fake.set_delay(0.25)
            limit = Decimal("0.025")  # reached after recovery at this machine's pace
            token, user_id = prepare(fake.base_url, limit)
            api = ApiProcess(api_env(), data / "api.log")
            api.start()
            asyncio.run(requests(api.base, token, 16, 32))  # warm, as in (a)
            load = Load(api.base, token)

            parked = [0]  # the most rows and orphans the journal held at once

            def watch(seconds: float) -> None:
                until = time.monotonic() + seconds
                while time.monotonic() < until:
                    parked[0] = max(parked[0], journal_backlog(api.base) or 0)
                    time.sleep(0.5)

            def timeline() -> None:
                time.sleep(5)
                cluster.stop_server()
                watch(20)
                cluster.restart_server()
                watch(10)

            asyncio.run(_load_while(load, timeline))
            settled_s = _settle(api, db_url, user_id)
            api.stop()
            books = read_books(db_url, user_id)
            rows = _accounting_rows(name, fake, books, load, settled_s, _journal_left(data))
            billed = billed_micros(fake.stats())
            over = max(0, billed - int(limit * 1_000_000))
            rows.insert(
                4,
                (name, "rows parked in the journal during the outage (most at once)",
                 str(parked[0]), "", ""),
            )  # fmt: skip
            rows.insert(
                -3,
                (name, f"overspend of the {usd(int(limit * 1_000_000))} hard budget",
                 usd(over), "$0", _met(over == 0)),
            )  # fmt: skip
            return rows
    finally:
        cluster.stop()


def _rate_gap(ok_a: int, n_a: int, ok_b: int, n_b: int) -> tuple[float, float]:
    """(b's rate minus a's, and 1.96 standard errors of that difference)."""
    pa, pb = ok_a / max(1, n_a), ok_b / max(1, n_b)
    se = math.sqrt(pa * (1 - pa) / max(1, n_a) + pb * (1 - pb) / max(1, n_b))
    return pb - pa, 1.96 * se


def partial_failure_scenario() -> list[Row]:
    name = "(c) provider 75% errors"
    seconds, clients = 10.0, 16
    with scratch_env() as data, fake_openai_process() as fake:
        fake.set_delay(0.02)
        token, _ = prepare(fake.base_url, None)
        api = ApiProcess(api_env(), data / "api.log")
        api.start()
        try:
            # Warm both paths (litellm's import, connections) before anything is timed.
            asyncio.run(requests(api.base, token, clients, clients * 2))
            asyncio.run(direct_with_retries(fake.base_url, clients, 1.0, 2))
            fake.steady()

            fake.flaky(0.75, 19, 500_000)
            sent, ok = asyncio.run(direct_with_retries(fake.base_url, clients, seconds, 2))
            direct_calls = fake.stats()["calls"]
            fake.steady()

            fake.flaky(0.75, 19, 500_000)
            load = Load(api.base, token, clients)
            asyncio.run(_load_while(load, lambda: time.sleep(seconds)))
            via_calls = fake.stats()["calls"]
            fake.steady()

            fake.flaky(1.0, 0, 100_000)
            down = asyncio.run(requests(api.base, token, 4, 40))
            down_calls = fake.stats()["calls"]
        finally:
            api.stop()
    total = sum(load.statuses.values())
    gap, margin = _rate_gap(ok, sent, load.statuses["200"], total)
    return [
        (
            name,
            "success rate: direct with 2 retries",
            f"{ok / max(1, sent):.1%} of {sent} ({direct_calls} calls)",
            "",
            "",
        ),
        (
            name,
            "success rate: through the gateway",
            f"{load.statuses['200'] / max(1, total):.1%} of {total} ({via_calls} calls)",
            "no worse than direct",
            "",
        ),
        (
            name,
            "gateway minus direct (95% margin of noise)",
            f"{gap * 100:+.1f} pts (±{margin * 100:.1f})",
            f">= -{margin * 100:.1f} pts",
            _met(gap >= -margin),
        ),
        (name, "HTTP statuses clients got", _statuses(load.statuses), "", ""),
        (
            name,
            "fully down: provider calls for 40 requests",
            f"{down_calls} ({_statuses(down)})",
            "<= 48 (95% of a 50-call window)",
            _met(down_calls <= 48),
        ),
    ]


SCENARIOS: Sequence[Callable[[], list[Row]]] = (
    kill_scenario,
    outage_scenario,
    partial_failure_scenario,
)


def main(argv: Sequence[str] = ()) -> int:
    picked = [s for s in SCENARIOS if not argv or any(a in s.__name__ for a in argv)]
    rows: list[Row] = []
    for scenario in picked:
        started = time.monotonic()
        print(f"running {scenario.__name__} …", flush=True)
        rows.extend(scenario())
        print(f"  done in {time.monotonic() - started:.0f} s", flush=True)
    print_table(
        "Switchboard under faults (make chaos); targets: 0 answered unaccounted, "
        "$0 billed missing from budgets, 0 HTTP 500s",
        ("scenario", "measure", "figure", "target", "met"),
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
