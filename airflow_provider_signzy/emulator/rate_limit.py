"""The emulator's rate limit: a token bucket per patron, as an API gateway in front of Signzy keeps.

Off by default. ``POST /_emulator/rate_limit`` with ``{"per_second": R}`` turns it on: each patron may
make R authenticated calls a second, with a burst of ``burst`` calls (default: R, at least 1). A call over
the limit is refused before the emulator acts on it, with ``status`` 429 (default) and ``Retry-After``
(whole seconds, as HTTP has it), or 403 as Signzy documents its rate limit. ``DELETE`` turns it off.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimit:
    per_second: float
    burst: float
    status: int = 429
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_json(cls, spec: dict[str, Any]) -> RateLimit:
        per_second = float(spec["per_second"])
        if not per_second > 0:
            raise ValueError("'per_second' must be positive")
        status = int(spec.get("status", 429))
        if status not in (429, 403):
            raise ValueError("'status' is 429 or 403")
        burst = float(spec.get("burst") or max(1.0, per_second))
        return cls(per_second=per_second, burst=burst, status=status)

    def take(self, patron: str) -> float | None:
        """None when the call may go ahead; else the seconds until the patron's next call may."""
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.setdefault(patron, _Bucket(tokens=self.burst, updated=now))
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.per_second)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return None
            return (1.0 - bucket.tokens) / self.per_second

    def describe(self) -> dict[str, Any]:
        return {"per_second": self.per_second, "burst": self.burst, "status": self.status}


def retry_after_header(wait: float) -> str:
    """``Retry-After`` in whole seconds, never 0 (HTTP has no fractions there)."""
    return str(max(1, math.ceil(wait)))
