"""The fake OpenAI provider in a process of its own, as a real provider would be.

In the benchmark's own process the fake's server thread competes for the GIL with the
event loop being measured, so the longer a client holds the GIL between awaits, the
later the "provider" answers; a separate process keeps the provider's speed out of
the comparison. Run as ``python -m bench.fake_process``: it prints its base URL, then
reads commands from stdin until stdin closes: "reset" clears its request log, and
"delay S" makes every later answer wait S seconds before its first byte.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


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

    def _command(self, line: str) -> None:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()
        if self._proc.stdout.readline().strip() != "ok":  # done before the next round
            raise RuntimeError(f"the fake provider process refused {line!r}")


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


def main() -> None:
    from tests.fakes import FakeOpenAI, Reply

    with FakeOpenAI() as fake:
        print(fake.base_url, flush=True)
        for line in sys.stdin:
            command, _, arg = line.strip().partition(" ")
            if command == "reset":
                fake.reset_log()
            elif command == "delay":
                fake.default = Reply(headers_delay=float(arg))
            else:
                print(f"unknown command {command!r}", flush=True)
                continue
            print("ok", flush=True)


if __name__ == "__main__":
    main()
