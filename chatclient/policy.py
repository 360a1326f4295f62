"""How a client reconnects: capped exponential backoff, with jitter.

Jitter spreads the reconnections of many clients dropped by one server
restart, so they do not all knock at the same instant.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["ReconnectPolicy"]


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """Wait `initial` seconds before the first attempt, then `factor` times longer
    each time, never more than `maximum`; give up after `attempts` (None: never)."""

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.1
    attempts: int | None = None
    timeout: float = 10.0  # for each attempt's connect, hello, rejoin and history

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < self.initial or self.factor < 1:
            raise ValueError("need 0 <= initial <= maximum and factor >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter is a fraction between 0 and 1")
        if self.attempts is not None and self.attempts < 1:
            raise ValueError("attempts must be positive (or None for no limit)")

    def delays(self) -> Iterator[float]:
        """The wait before each attempt, in order (endless; `attempts` is the caller's)."""
        delay = self.initial
        while True:
            yield delay * (1 - self.jitter * random.random())
            delay = min(self.maximum, delay * self.factor)
