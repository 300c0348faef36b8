"""The fake OpenAI provider in a process of its own, as a real provider would be.

In the benchmark's own process the fake's server thread competes for the GIL with the
event loop being measured, so the longer a client holds the GIL between awaits, the
later the "provider" answers; a separate process keeps the provider's speed out of
the comparison. Run as ``python -m bench.fake_process``: it prints its base URL, then
reads commands from stdin until stdin closes, answering each with a line:

- ``reset``: forget the requests seen so far;
- ``delay S``: every later answer waits S seconds before its first byte;
- ``flaky P SEED N``: the next N requests fail with a 503 with probability P (seeded);
- ``steady``: forget the log and any queued failures, keeping the delay;
- ``stats``: one JSON line: calls, answered (whole answers sent) and the tokens billed.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class FakeProcess:
    def __init__(self, proc: subprocess.Popen[str], base_url: str) -> None:
        self._proc = proc
        self.base_url = base_url

    def reset_log(self) -> None:
        """Forget the requests seen so far, so the fake's heap does not grow all run."""
        self._command("reset")

    def set_delay(self, seconds: float) -> None:
        """Answer every later request after ``seconds``, as a real model takes time to."""
        self._command(f"delay {seconds}")

    def flaky(self, failure_rate: float, seed: int, requests: int) -> None:
        """Fail the next ``requests`` requests with a 503 at ``failure_rate``, repeatably."""
        self._command(f"flaky {failure_rate} {seed} {requests}")

    def steady(self) -> None:
        """Back to answering every request: queued failures and the log are dropped."""
        self._command("steady")

    def stats(self) -> dict[str, int]:
        """Chat calls seen, whole answers sent, and the prompt/completion tokens billed."""
        line = self._ask("stats")
        data: dict[str, int] = json.loads(line)
        self._expect_ok()
        return data

    def _command(self, line: str) -> None:
        self._ask(line, ok=True)

    def _ask(self, line: str, ok: bool = False) -> str:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()
        answer = self._proc.stdout.readline().strip()
        if ok and answer != "ok":  # done before the next round
            raise RuntimeError(f"the fake provider process refused {line!r}")
        return answer

    def _expect_ok(self) -> None:
        assert self._proc.stdout is not None
        if self._proc.stdout.readline().strip() != "ok":
            raise RuntimeError("the fake provider process answered out of turn")


@contextmanager
def fake_openai_process() -> Iterator[FakeProcess]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.fake_process"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        if not base_url.startswith("http"):
            raise RuntimeError("the fake provider process did not start")
        yield FakeProcess(proc, base_url)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(30)


def _stats(fake: Any) -> dict[str, int]:
    chats = [r for r in fake.requests() if r.path.endswith("/chat/completions")]
    answered = [r for r in chats if r.outcome == "ok" and r.completed]
    return {
        "calls": len(chats),
        "answered": len(answered),
        "prompt_tokens": sum(int(r.extra.get("prompt_tokens", 0)) for r in answered),
        "completion_tokens": sum(r.tokens_sent for r in answered),
    }


def main() -> None:
    from tests.fakes import FakeOpenAI, Reply, Status

    with FakeOpenAI() as fake:
        print(fake.base_url, flush=True)
        delay = 0.0
        for line in sys.stdin:
            command, *args = line.split()
            if command == "reset":
                fake.reset_log()
            elif command == "delay":
                delay = float(args[0])
                fake.default = Reply(headers_delay=delay)
            elif command == "flaky":
                rate, rng, n = float(args[0]), random.Random(int(args[1])), int(args[2])
                ok, failed = Reply(headers_delay=delay), Status(503, delay=delay)
                fake.script(None, *(failed if rng.random() < rate else ok for _ in range(n)))
            elif command == "steady":
                fake.reset()
                fake.default = Reply(headers_delay=delay)
            elif command == "stats":
                print(json.dumps(_stats(fake)), flush=True)
            else:
                print(f"unknown command {command!r}", flush=True)
                continue
            print("ok", flush=True)


if __name__ == "__main__":
    main()
