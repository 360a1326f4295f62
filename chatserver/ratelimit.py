"""What a client's frames cost: a token bucket, and the meter that charges it.

Every frame a client sends costs a token (`hello` excepted), whether it is a
command, a `pong` or a frame the protocol rejected: nothing a client can send
is free. The meter says what to do with each frame; the reader carries it out.
"""

from __future__ import annotations

import time
from enum import Enum

__all__ = ["Meter", "TokenBucket", "Verdict"]


class TokenBucket:
    """`burst` tokens at once, `rate` per second sustained. Not thread-safe: one
    owner (a connection's reader) or a caller's lock."""

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = time.monotonic()

    def take(self) -> bool:
        """Spend a token if there is one."""
        now = time.monotonic()
        tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        return False


class Verdict(Enum):
    """What becomes of one frame."""

    PASS = "pass"  # carry the command out, or answer the rejected frame
    REFUSE = "refuse"  # answer `rate_limited`, not fatal
    IGNORE = "ignore"  # refused silently: a `pong` finding the bucket empty
    CUT_RATE = "cut_rate"  # the fatal `rate_limited`
    CUT_ERRORS = "cut_errors"  # the fatal `too_many_errors`


class Meter:
    """Charges one connection's frames to its bucket.

    - `hello` is free; every other frame costs a token.
    - A frame that finds the bucket empty is refused: a command is answered
      `rate_limited`, a `pong` is not answered at all, a `bye` is carried out
      anyway. The `burst`-th refused frame in a row (`bye` aside) is cut.
    - A rejected frame (bad UTF-8, JSON or fields, unknown type) is answered
      while tokens remain; the `burst`-th rejected frame with no valid command
      between is cut with `too_many_errors`.
    - A fatal rejection (a frame too large, anything before `hello`) always
      passes: it ends the connection with its own error.
    """

    __slots__ = ("_bucket", "_limit", "errors", "refused")

    def __init__(self, rate: float, burst: int) -> None:
        self._bucket = TokenBucket(rate, burst)
        self._limit = burst
        self.refused = 0  # frames refused in a row
        self.errors = 0  # rejected frames since the last valid command

    def charge(self, kind: str | None, *, fatal: bool = False) -> Verdict:
        """Judge one frame: `kind` is a command's type, None for a rejected frame."""
        if fatal or kind == "hello":
            return Verdict.PASS
        if kind is None:
            self.errors += 1
            if self.errors >= self._limit:
                return Verdict.CUT_ERRORS
        if self._bucket.take():
            self.refused = 0
            if kind is not None:
                self.errors = 0
            return Verdict.PASS
        if kind == "bye":
            return Verdict.PASS
        self.refused += 1
        if self.refused >= self._limit:
            return Verdict.CUT_RATE
        return Verdict.IGNORE if kind == "pong" else Verdict.REFUSE
