"""What a person waits for, in Chromium: every click timed to the page settled.

`python -m bench browser` (part of `make bench`). For each ledger size (default 200,000
and 1,000,000 demo requests over 90 days on SQLite; SWITCHBOARD_BENCH_BROWSER_ROWS for
others, comma separated) it fills a database with `switchboard demo-data`, adds an admin,
600 comparison votes and the openai provider pointed at a fake on loopback, starts
`streamlit run app.py` and drives /usr/bin/chromium with Playwright as that admin:

* each page opened from the sidebar (the first open of each is in the samples: a cold
  cache is what the first visitor meets);
* analytics: filter changes (provider, task, date range) and view changes;
* leaderboard: opened right after a new vote is stored, and its task filter changed;
* model preferences: adding a model to the fallback chain, saving the chain;
* chat: a message sent, until the first token shows (the fake streams it at once).

Each interaction runs SWITCHBOARD_BENCH_BROWSER_RUNS times (default 10); the table gives
p50 and p95 in ms beside the target (page opens 1.5 s, every other click 1 s, p95).
SWITCHBOARD_BENCH_BROWSER_ONLY picks groups (page opens, analytics, leaderboard,
preferences, chat; comma separated).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import browser_seed as seed
from bench.common import print_table, scratch_env, stats
from tests.support.server import wait_for_streamlit

ROWS_ENV = "SWITCHBOARD_BENCH_BROWSER_ROWS"
RUNS_ENV = "SWITCHBOARD_BENCH_BROWSER_RUNS"
ONLY_ENV = "SWITCHBOARD_BENCH_BROWSER_ONLY"  # e.g. "preferences,chat": just those groups
CHROMIUM = Path("/usr/bin/chromium")
KEY = "sk-bench-browser-0000000000"
PAGE_TARGET_S = 1.5
CLICK_TARGET_S = 1.0
PAGES = (  # in order, each opened from the one before; sign-in lands on Home
    "Chat",
    "Compare",
    "Leaderboard",
    "Analytics",
    "Models",
    "Providers & keys",
    "Model preferences",
    "My account",
    "Admin",
    "Users",
    "Home",
)
Samples = dict[str, list[float]]


@contextmanager
def streamlit_app(db_path: Path, log_path: Path) -> Iterator[str]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {
        **os.environ,
        "SWITCHBOARD_DB_URL": f"sqlite:///{db_path}",
        "SWITCHBOARD_MODE": "development",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "OPENAI_API_KEY": KEY,
    }
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless=true"]
    cmd += [f"--server.port={port}", "--server.address=127.0.0.1"]
    cmd += ["--browser.gatherUsageStats=false", "--server.fileWatcherType=none"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=seed.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        failure = wait_for_streamlit(proc, base, 120)
        if failure is not None:
            raise RuntimeError(f"streamlit {failure}:\n{log_path.read_text()[-3000:]}")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _drive(base: str, runs: int, vote: Callable[[], None]) -> Samples:
    from playwright.sync_api import sync_playwright

    from bench import browser_steps as steps
    from bench.browser_clicks import sign_in

    samples: Samples = {}
    failed: list[str] = []
    args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"]
    args += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        context = chromium.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        sign_in(page, base, seed.ADMIN, seed.PASSWORD)
        groups: list[tuple[str, Callable[[int], None]]] = [
            ("page opens", lambda i: steps.page_opens(page, samples, PAGES)),
            ("analytics", lambda i: steps.analytics_changes(page, samples)),
            ("leaderboard", lambda i: steps.leaderboard_after_vote(page, samples, vote)),
            ("preferences", lambda i: steps.preference_edits(page, samples, i)),
            ("chat", lambda i: steps.chat_first_token(page, samples, i)),
        ]
        only = {g for g in os.environ.get(ONLY_ENV, "").split(",") if g}
        for name, step in groups:
            if only and name not in only:
                continue
            try:
                for i in range(runs):
                    step(i)
            except Exception as exc:  # one broken step must not lose the others' figures
                print(f"  {name}: stopped by {type(exc).__name__}: {str(exc)[:300]}")
                failed.append(name)
                page.goto(base + "/")  # start the next group from Home, signed in
        chromium.close()
    if failed:
        print(f"  not measured to the end (see above): {', '.join(failed)}")
    return samples


def _measure(rows: int, folder: Path, runs: int) -> tuple[Samples, float | None]:
    from tests.fakes import FakeOpenAI, Reply

    db_path, filled = seed.demo_database(rows, folder)
    sessions = seed.sessions_for(db_path)
    with FakeOpenAI() as fake:
        # The first token at once, the rest later: the table's figure is the first token.
        fake.default = Reply(tokens=["Bonjour", " from", " the", " fake."], token_delay=0.5)
        admin_id = seed.seed(sessions, fake.base_url)
        rng = random.Random(7)
        with streamlit_app(db_path, folder / f"streamlit-{rows}.log") as base:
            samples = _drive(base, runs, lambda: seed.add_vote(sessions, admin_id, rng))
    return samples, filled


def _row(name: str, found: list[float], target_s: float) -> list[object]:
    got = stats(found if len(found) > 1 else found * 2)  # one sample: p50 = p95 = it
    verdict = "met" if got.p95_ms <= target_s * 1000 else "MISSED"
    return [name, f"{got.p50_ms:.0f}", f"{got.p95_ms:.0f}", f"{target_s * 1000:.0f}", verdict]


def run() -> None:
    if not CHROMIUM.exists():
        print(f"\nBrowser benchmark skipped: {CHROMIUM} is missing (.ci/install-system-deps).")
        return
    sizes = [int(n) for n in os.environ.get(ROWS_ENV, "200000,1000000").split(",") if n]
    runs = int(os.environ.get(RUNS_ENV, "10"))
    with scratch_env() as tmp:
        for rows in sizes:
            samples, filled = _measure(rows, tmp, runs)
            table = [
                _row(name, found, PAGE_TARGET_S if name.startswith("open ") else CLICK_TARGET_S)
                for name, found in samples.items()
            ]
            fill = "reused" if filled is None else f"filled in {filled:.0f} s"
            print_table(
                f"Browser: click to settled, Chromium, SQLite, {rows:,} ledger rows "
                f"({fill}), {runs} runs each",
                ["interaction", "p50 ms", "p95 ms", "target p95 ms", "p95 target"],
                table,
            )


if __name__ == "__main__":
    run()
