"""Retry policy for transient upstream errors.

Exponential backoff with full jitter, ``Retry-After`` honoured up to a cap, and a
retry budget per deployment so a burst of failures never becomes a burst of
retries: every first attempt earns a fraction of a retry, every retry spends one.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field


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


@dataclass
class RetryBudget:
    """Token bucket: ``ratio`` retries earned per first attempt, at most ``capacity`` saved."""

    ratio: float = 0.2
    capacity: float = 10.0
    _tokens: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def earn(self, deployment: str) -> None:
        with self._lock:
            have = self._tokens.get(deployment, self.capacity)
            self._tokens[deployment] = min(self.capacity, have + self.ratio)

    def spend(self, deployment: str) -> bool:
        with self._lock:
            have = self._tokens.get(deployment, self.capacity)
            if have < 1:
                return False
            self._tokens[deployment] = have - 1
            return True
