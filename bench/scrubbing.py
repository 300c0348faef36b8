"""What scrubbing a request's secrets from its answer costs (issue 20, finding 1).

An answer of 500 typical pieces (3-5 characters, as providers stream them) passes
through the gateway's StreamScrubber with three secrets (provider key, endpoint key,
gateway token), against the same loop with no secrets (the scrubber's pass-through).
The figure to read: added microseconds per answer, beside a /v1 request's few
milliseconds of gateway overhead (the HTTP API table above).
"""

from __future__ import annotations

import random
import statistics
import string
import time

from bench.common import print_table

SECRETS = (
    "sk-proj-" + "a1b2c3d4" * 6,
    "sk-endpoint-key-0123456789abcdef",
    "sb-" + "Q" * 43,
)
PIECES = 500


def _answer(rng: random.Random) -> list[str]:
    words = string.ascii_lowercase + "     .,'"  # plenty of "s": the first letter of "sk-"/"sb-"
    return ["".join(rng.choice(words) for _ in range(rng.randint(3, 5))) for _ in range(PIECES)]


def _time_one(secrets: tuple[str, ...], pieces: list[str], repeats: int) -> list[float]:
    from core.accounts.scrubber import Scrubbers

    scrubbers = Scrubbers()
    samples: list[float] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        stream = scrubbers.get(secrets).stream()  # looked up per request, as the gateway does
        for piece in pieces:
            stream.feed(piece)
        stream.flush()
        samples.append(time.perf_counter() - t0)
    return samples


def run(repeats: int = 200) -> float:
    pieces = _answer(random.Random(20))
    base: list[float] = []
    scrubbed: list[float] = []
    for _ in range(5):  # interleaved, so machine noise hits both alike
        base += _time_one((), pieces, repeats)
        scrubbed += _time_one(SECRETS, pieces, repeats)
    b, s = statistics.median(base) * 1e6, statistics.median(scrubbed) * 1e6
    print_table(
        f"Secret scrubbing: one {PIECES}-piece streamed answer (median of {len(base)})",
        ["case", "us per answer", "us per piece"],
        [
            ["no secrets (pass-through)", f"{b:.1f}", f"{b / PIECES:.3f}"],
            ["3 secrets", f"{s:.1f}", f"{s / PIECES:.3f}"],
            ["added by scrubbing", f"{s - b:.1f}", f"{(s - b) / PIECES:.3f}"],
        ],
    )
    return s - b


if __name__ == "__main__":
    run()
