"""Retry policy for transient upstream errors.

Exponential backoff with full jitter, and ``Retry-After`` honoured up to a cap. What
keeps a burst of failures from becoming a burst of retries is the circuit breaker
(core/upstream/breaker.py): a retry needs it closed, so a deployment failing nearly
every call gets none, while one that still answers some calls gets every retry a
client calling it directly would make.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    base_delay_s: float = 0.25
    max_delay_s: float = 4.0
    retry_after_cap_s: float = 10.0

    def delay(self, retry_number: int, retry_after_s: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based)."""
        if retry_after_s is not None and retry_after_s >= 0:
            return min(retry_after_s, self.retry_after_cap_s)
        ceiling = min(self.max_delay_s, self.base_delay_s * (2 ** (retry_number - 1)))
        return rng.uniform(0, ceiling)
