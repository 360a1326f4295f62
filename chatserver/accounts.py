"""Registered nicks: password hashing, and the throttle on failed logins.

Passwords are hashed with scrypt and a random salt per account; the
parameters are stored with the hash so they can be raised later without
breaking old accounts. Hashes are compared in constant time. Nothing here
logs a password.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections import deque

__all__ = ["LoginThrottle", "hash_password", "verify_password"]

_N, _R, _P = 2**14, 8, 1
_SALT = 16
_LENGTH = 32
_MAX_ADDRESSES = 10_000  # addresses remembered before the stale ones are pruned


def hash_password(password: str) -> str:
    """A storable hash: `scrypt$n$r$p$salt$hash`, hex-encoded."""
    salt = os.urandom(_SALT)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_LENGTH)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = bytes.fromhex(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=bytes.fromhex(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


class LoginThrottle:
    """At most `limit` failed logins per client address in any `window` seconds;
    past that, the address is refused without a check until the oldest failure
    leaves the window. This caps password guessing at `limit` per `window`."""

    def __init__(self, limit: int, window: float) -> None:
        self._limit = limit
        self._window = window
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def wait(self, address: str) -> float:
        """Seconds until `address` may try again; 0 if it may now."""
        now = time.monotonic()
        with self._lock:
            recent = self._failures.get(address)
            if recent is None:
                return 0.0
            while recent and now - recent[0] >= self._window:
                recent.popleft()
            if not recent:
                del self._failures[address]
                return 0.0
            if len(recent) < self._limit:
                return 0.0
            return self._window - (now - recent[0])

    def failed(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) >= _MAX_ADDRESSES:
                self._failures = {
                    a: f for a, f in self._failures.items() if now - f[-1] < self._window
                }
            self._failures.setdefault(address, deque(maxlen=self._limit)).append(now)
