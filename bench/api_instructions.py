"""Instructions per `/v1` request, counted by callgrind: a figure the machine's load cannot move.

CPU time on the shared development machines varies by about 25% between runs, which
hides a 5-10% change. ``valgrind --tool=callgrind`` counts the instructions the
`switchboard api` process executes (all threads, user space) while it serves
``requests`` non-streamed requests from one client, after a warm-up; the count repeats
within a few percent (the server's timers add a little per second, so count enough
requests). It is not part of `make bench` (valgrind makes the server ~50x
slower, so one count takes about a minute). Run it before and after a change:

    .venv/bin/python -m bench.api_instructions [REQUESTS]
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.api_http import BODY, KEY, _free_port, _prepare
from bench.common import scratch_env
from bench.fake_process import fake_openai_process


def _total_instructions(out_dir: Path) -> int:
    """The largest ``totals:`` line among callgrind's dumps (the one taken after the run)."""
    totals = [0]
    for dump in out_dir.glob("callgrind.*"):
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                totals.append(int(line.split()[1]))
    return max(totals)


async def _send(url: str, token: str, count: int) -> None:
    async with httpx.AsyncClient(timeout=120) as client:
        for _ in range(count):
            r = await client.post(url, json=BODY, headers={"Authorization": f"Bearer {token}"})
            r.raise_for_status()


def count(requests: int = 150, warm_up: int = 30) -> float:
    """Instructions per request of a fresh `switchboard api` process under callgrind."""
    with scratch_env() as data, fake_openai_process() as fake:
        token = _prepare(fake.base_url)
        port = _free_port()
        out_dir = Path(data) / "callgrind"
        out_dir.mkdir()
        server = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out_dir}/callgrind.%p",
                sys.executable,
                "-m",
                "core",
                "api",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env={**os.environ, "OPENAI_API_KEY": KEY},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 600  # litellm's import alone is minutes under valgrind
            while True:
                try:
                    if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the API did not start under valgrind")
                time.sleep(0.5)
            url = f"{base}/v1/chat/completions"
            asyncio.run(_send(url, token, warm_up))
            control = ["callgrind_control"]  # its messages are captured, not printed
            subprocess.run([*control, "-i", "on", str(server.pid)], check=True, capture_output=True)
            asyncio.run(_send(url, token, requests))
            for command in ("-i", "off"), ("-d",):
                subprocess.run(
                    [*control, *command, str(server.pid)], check=True, capture_output=True
                )
            time.sleep(2)  # the dump is written by the server process
            return _total_instructions(out_dir) / requests
        finally:
            server.terminate()
            server.wait(120)


def main() -> int:
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 150
    per_request = count(requests)
    print(
        f"/v1/chat/completions, non-streamed, one client: "
        f"{per_request / 1e6:.2f} million instructions per request ({requests} requests)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
