"""Per-token rate limits (token buckets) of the API's write endpoints.

Each API worker process keeps its own buckets: with ``RECOPS_API_WORKERS=N`` a token may post up to
N times the limit in total, which the limit's setting accounts for (it is a guard against a leaked or
runaway client flooding the next training run, not billing)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class TokenBuckets:
    """``per_minute`` units per key, refilled continuously, at most ``burst`` saved up."""

    per_minute: int
    burst: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (units, at)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.per_minute < 1 or self.burst < 1:
            raise ValueError(f"rate limit must be positive: {self.per_minute}/min, burst {self.burst}")

    def take(self, key: str, units: int = 1) -> float:
        """Spend ``units`` of ``key``'s bucket; returns 0 when allowed, else the seconds until it
        would be (nothing is spent then). A request larger than the burst can never pass."""
        if units > self.burst:
            return math.inf
        rate = self.per_minute / 60.0
        with self._lock:
            now = self.clock()
            saved, at = self._buckets.get(key, (float(self.burst), now))
            saved = min(float(self.burst), saved + (now - at) * rate)
            if saved >= units:
                self._buckets[key] = (saved - units, now)
                return 0.0
            self._buckets[key] = (saved, now)
            return (units - saved) / rate
