"""Fixed latency buckets, so percentiles come from summed counts instead of raw rows.

Each rollup row keeps one count per bucket for latency and for time to first token.
Summing the buckets of the rows a filter selects gives that selection's histogram in
one aggregate query, at any ledger size. A percentile read from it is approximate: the
true value lies inside the bucket the rank falls in, and the figure reported is a
linear interpolation within that bucket. Bucket widths are at most a third of their
lower edge (10 ms below 60 ms), so the reported value is within that of the truth.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Final

# Upper edges in milliseconds; bucket i holds values in [EDGES[i-1], EDGES[i]).
EDGES_MS: Final[tuple[int, ...]] = (
    10,
    20,
    30,
    40,
    50,
    60,
    80,
    100,
    125,
    150,
    200,
    250,
    300,
    400,
    500,
    600,
    800,
    1000,
    1250,
    1500,
    2000,
    2500,
    3000,
    4000,
    5000,
    6000,
    8000,
    10000,
    12500,
    15000,
    20000,
    25000,
    30000,
    40000,
    50000,
    60000,
    80000,
    100000,
    150000,
    300000,
)
BUCKETS: Final = len(EDGES_MS) + 1  # the last bucket is open-ended (>= 300 s)


def latency_column(i: int) -> str:
    return f"lat_{i:02d}"


def ttft_column(i: int) -> str:
    return f"ttft_{i:02d}"


LATENCY_COLUMNS: Final = tuple(latency_column(i) for i in range(BUCKETS))
TTFT_COLUMNS: Final = tuple(ttft_column(i) for i in range(BUCKETS))


def bucket_of(ms: int) -> int:
    return bisect.bisect_right(EDGES_MS, max(ms, 0))


def bounds(i: int) -> tuple[int, int]:
    """[low, high) of bucket i; the open last bucket reports its low edge twice."""
    low = 0 if i == 0 else EDGES_MS[i - 1]
    high = EDGES_MS[i] if i < len(EDGES_MS) else low
    return low, high


def percentile(counts: Sequence[int], q: float) -> float | None:
    """The q-quantile (0 < q <= 1, nearest rank) interpolated within its bucket; None if empty."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            low, high = bounds(i)
            # The k-th of n values in a bucket sits at (k - 0.5) / n of its width.
            return low + (high - low) * (rank - seen - 0.5) / n
        seen += n
    return float(bounds(len(counts) - 1)[0])  # unreachable: ranks never exceed the total
