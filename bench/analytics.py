"""Analytics at scale: the page's full run and filter changes over a large ledger.

For SQLite and a throwaway PostgreSQL, `switchboard demo-data` fills a fresh database
(default 1,000,000 requests over 90 days; SWITCHBOARD_BENCH_ANALYTICS_ROWS for quick
runs). A worker process then drives the Analytics page with AppTest as an admin (the
widest scope): the first run in a fresh process, a cold-cache run (st.cache_data
cleared) and five filter changes. Baseline, in its own process: the naive way, loading
the period's rows into pandas and computing the same key figures and breakdowns.
Peak memory is each worker process's max RSS.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import print_table, scratch_env

ROWS_ENV = "SWITCHBOARD_BENCH_ANALYTICS_ROWS"
DAYS = 90
ROOT = Path(__file__).resolve().parents[1]
PAGE = "app_pages/analytics.py"
PASSWORD = "bench-password-123456"


def _env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"SWITCHBOARD_DB_URL": url, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    return env


def _run(args: list[str], url: str, stdin: str = "") -> str:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=_env(url),
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{args} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done.stdout


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- workers (run in their own process) -----------------------------------------------


def page_worker() -> dict[str, Any]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    def signed_in() -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.session_state["authentication_status"] = True
        at.session_state["username"] = "bench-admin"
        at.run()
        return at

    at = signed_in()
    started = time.perf_counter()
    at.switch_page(PAGE).run()
    first = time.perf_counter() - started
    assert not at.exception, [e.value for e in at.exception]
    st.cache_data.clear()
    at = signed_in()
    started = time.perf_counter()
    at.switch_page(PAGE).run()
    cold = time.perf_counter() - started
    changes = []
    steps = (
        ("sb_analytics_f_provider", "openai"),
        ("sb_analytics_f_task", "summarise"),
        ("sb_analytics_f_provider", None),
        ("sb_analytics_f_preset", "7d"),
        ("sb_analytics_f_status", "failed"),
    )
    for key, value in steps:
        started = time.perf_counter()
        at.selectbox(key=key).set_value(value).run()
        changes.append(time.perf_counter() - started)
        assert not at.exception, [e.value for e in at.exception]
    return {"first": first, "cold": cold, "changes": changes, "rss": _maxrss_mb()}


def naive_worker() -> dict[str, Any]:
    """Load the last 30 days of requests into pandas, then compute the key figures."""
    from datetime import timedelta

    import pandas as pd
    from sqlalchemy import select

    from core.clock import utc_now
    from core.store import db
    from core.store.tables import RequestRow

    engine = db.make_engine(os.environ["SWITCHBOARD_DB_URL"])
    started = time.perf_counter()
    since = utc_now() - timedelta(days=30)
    with engine.connect() as conn:
        frame = pd.read_sql(select(RequestRow.__table__).where(RequestRow.at >= since), conn)
    loaded = time.perf_counter() - started
    ok = frame["status"].isin(["success", "success-after-fallback"])
    frame["day"] = pd.to_datetime(frame["at"]).dt.date
    _ = (
        frame["cost_micros"].sum(),
        len(frame),
        frame["prompt_tokens"].sum(),
        ok.mean(),
        frame["fallback_used"].mean(),
        frame.loc[ok, "latency_ms"].quantile([0.5, 0.95]),
        frame.loc[ok, "ttft_ms"].quantile([0.5, 0.95]),
        frame.groupby(["day", "provider"])["cost_micros"].sum(),
        frame.groupby("task")["cost_micros"].sum(),
        frame.groupby("user_id")["cost_micros"].sum(),
        frame.groupby(["provider", "served_model", "task"])["latency_ms"].describe(),
    )
    total = time.perf_counter() - started
    engine.dispose()
    return {"load": loaded, "total": total, "rows": len(frame), "rss": _maxrss_mb()}


# --- the benchmark ---------------------------------------------------------------------


def _measure(name: str, url: str, rows: int) -> list[object]:
    started = time.perf_counter()
    _run(["-m", "core", "demo-data", "--rows", str(rows), "--days", str(DAYS), "--db", url], url)
    fill = time.perf_counter() - started
    _run(["-m", "core", "user", "add", "bench-admin", "--role", "admin"], url, PASSWORD + "\n")
    page = json.loads(_run(["-m", "bench.analytics", "page"], url).strip().splitlines()[-1])
    naive = json.loads(_run(["-m", "bench.analytics", "naive"], url).strip().splitlines()[-1])
    change_med = statistics.median(page["changes"])
    steps = ", ".join(f"{s:.2f}" for s in page["changes"])
    print(f"  {name}: filter changes (provider, task, provider cleared, 7 days, status): {steps} s")
    return [
        name,
        f"{rows:,}",
        f"{fill:.0f} s",
        f"{page['first']:.2f} s",
        f"{page['cold']:.2f} s",
        f"{change_med:.2f} / {max(page['changes']):.2f} s",
        f"{page['rss']:.0f} MB",
        f"{naive['total']:.2f} s ({naive['rows']:,} rows)",
        f"{naive['rss']:.0f} MB",
        f"{naive['total'] / page['cold']:.1f}x",
        f"{naive['rss'] / page['rss']:.1f}x",
    ]


def run() -> None:
    rows = int(os.environ.get(ROWS_ENV, "1000000"))
    results = []
    with scratch_env() as tmp:
        results.append(_measure("SQLite", f"sqlite:///{tmp}/analytics.db", rows))
        from tests.support.postgres import LocalCluster, find_pg_bin

        bin_dir = find_pg_bin()
        if bin_dir is None:
            print("PostgreSQL binaries not found: PostgreSQL row skipped.")
        else:
            cluster = LocalCluster(bin_dir)
            try:
                admin = cluster.start()
                with __import__("psycopg").connect(
                    host=admin.host,
                    port=admin.port,
                    user=admin.username,
                    dbname="postgres",
                    autocommit=True,
                ) as conn:
                    conn.execute("CREATE DATABASE bench")
                url = admin.set(database="bench").render_as_string(hide_password=False)
                results.append(_measure("PostgreSQL", url, rows))
            finally:
                cluster.stop()
    print_table(
        f"Analytics page over {rows:,} requests ({DAYS} days; default view: last 30 days)",
        [
            "database",
            "rows",
            "fill",
            "first run",
            "cold cache",
            "filter change med/max",
            "page RSS",
            "naive pandas",
            "naive RSS",
            "speed-up",
            "memory ratio",
        ],
        results,
    )
    print(
        "  targets: cold cache <= 1.5 s, each filter change <= 0.5 s; speed-up and memory "
        "ratio = naive / page (higher is better)"
    )


if __name__ == "__main__":
    worker = {"page": page_worker, "naive": naive_worker}[sys.argv[1]]
    print(json.dumps(worker()))
