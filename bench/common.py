"""Shared benchmark plumbing: a throwaway database, fake upstreams, percentiles, tables."""

from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.accounts.auth import UserInfo
    from core.gateway.runtime import Runtime

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@dataclass(frozen=True)
class Stats:
    p50_ms: float
    p95_ms: float
    n: int


def stats(samples_s: Sequence[float]) -> Stats:
    ordered = sorted(samples_s)
    q = statistics.quantiles(ordered, n=20, method="inclusive")
    return Stats(statistics.median(ordered) * 1000, q[18] * 1000, len(ordered))


@contextmanager
def scratch_env() -> Iterator[Path]:
    """Point Switchboard at a fresh SQLite file in a temp folder for the benchmark's life."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("SWITCHBOARD_")}
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as tmp:
        os.environ["SWITCHBOARD_DATA_DIR"] = tmp
        os.environ["SWITCHBOARD_DB_URL"] = f"sqlite:///{tmp}/bench.db"
        os.environ["SWITCHBOARD_MODE"] = "development"
        try:
            yield Path(tmp)
        finally:
            for k in [k for k in os.environ if k.startswith("SWITCHBOARD_")]:
                del os.environ[k]
            os.environ.update(saved)


def bench_user(runtime: Runtime, fake_base_url: str) -> UserInfo:
    """The benchmarks' member "bench", with the openai provider pointed at the fake."""
    from core.accounts.auth import create_user
    from core.clock import utc_now
    from core.settings import endpoints

    with runtime.sessions.begin() as s:
        user = create_user(
            s,
            username="bench",
            password="not-guessable-123",
            role="member",
            actor="bench",
            now=utc_now(),
            rounds=4,
        )
        endpoints.add_endpoint(
            s,
            name="openai",
            kind="override",
            api_base=fake_base_url,
            actor="bench",
            now=utc_now(),
            builtin_providers=runtime.catalog.providers(),
        )
    return user


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    for i, row in enumerate(cells):
        print(
            "  "
            + "  ".join(
                c.rjust(w) if j else c.ljust(w)
                for j, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if i == 0:
            print("  " + "  ".join("-" * w for w in widths))
