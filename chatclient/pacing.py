"""A client-side copy of the server's token bucket (PROTOCOL.md section 10).

Waiting here before sending keeps a busy client under the server's rate limit,
so it is slowed down instead of answered with `rate_limited`. It is kept to
half the server's burst, leaving room for frames that bunch up in transit.
"""

from __future__ import annotations

import threading
import time

__all__ = ["Pacer"]


class Pacer:
    """Hands out send slots at `rate` per second after an initial `burst`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rate = 0.0  # 0: not limited
        self._burst = 1.0
        self._tokens = 0.0
        self._stamp = time.monotonic()

    def configure(self, rate: float, burst: int) -> None:
        """Adopt a server's limits (from `welcome`), starting with a full bucket."""
        with self._lock:
            self._rate = rate
            self._burst = max(1.0, burst // 2)
            self._tokens = self._burst
            self._stamp = time.monotonic()

    def reserve(self) -> float:
        """Take a slot; return how many seconds to wait before using it."""
        with self._lock:
            if self._rate <= 0:
                return 0.0
            now = time.monotonic()
            self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now
            self._tokens -= 1  # may go negative: later callers queue up behind this one
            return 0.0 if self._tokens >= 0 else -self._tokens / self._rate
