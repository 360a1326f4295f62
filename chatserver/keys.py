"""The idempotency keys of `say` and `dm` seen lately (PROTOCOL.md 1.3).

A key is scoped by the sender's folded nick. Each is kept at least `ttl`
seconds, and each nick's last `keep` keys are kept even when older; but the
whole index never costs more than `budget` bytes (an entry's cost is given by
its owner, about what it holds): past that, the oldest entries go first, so
a flood of keyed sends cannot grow the server; `complete` then says that
keys may be missing (the sequencer looks a `say`'s key up in SQLite then).
Not thread-safe: its owner serialises the calls.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["ENTRY_COST", "RecentKeys"]

_V = TypeVar("_V")

#: What an entry costs besides the characters of its nick and key and what its
#: owner counts for the value: the ordered-dict node, the tuples, the float and
#: the string headers (tracemalloc: about 460 bytes per `say` entry with an
#: 8-character nick and a 12-character key; 64 MiB hold about 145,000 of them).
ENTRY_COST = 440


class RecentKeys(Generic[_V]):
    def __init__(
        self, *, ttl: float = 600.0, keep: int = 1000, budget: int = 64 * 1024 * 1024
    ) -> None:
        self._ttl = ttl
        self._keep = keep
        self._budget = budget
        self._entries: OrderedDict[tuple[str, str], tuple[float, _V, int]] = OrderedDict()
        self._per_nick: dict[str, int] = {}
        self.cost = 0  # bytes, as the owners counted them
        self._short_until = 0.0  # until when a key younger than ttl may be missing

    def complete(self, now: float | None = None) -> bool:
        """Whether every key of the last `ttl` seconds is here: false for `ttl`
        seconds after the budget pushed out a younger one (an owner with the keys
        on disk then looks there too)."""
        return (time.monotonic() if now is None else now) >= self._short_until

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, nick: str, key: str) -> _V | None:
        entry = self._entries.get((nick, key))
        return None if entry is None else entry[1]

    def put(self, nick: str, key: str, value: _V, cost: int, now: float | None = None) -> None:
        """Remember `value` for (`nick`, `key`); `cost` is its size in bytes."""
        scope = (nick, key)
        if scope in self._entries:
            self.discard(nick, key)
        cost += ENTRY_COST + len(nick) + len(key)
        self._entries[scope] = (time.monotonic() if now is None else now, value, cost)
        self._per_nick[nick] = self._per_nick.get(nick, 0) + 1
        self.cost += cost
        self._expire(time.monotonic() if now is None else now)

    def discard(self, nick: str, key: str) -> None:
        entry = self._entries.pop((nick, key), None)
        if entry is not None:
            self._forget(nick, entry[2])

    def _forget(self, nick: str, cost: int) -> None:
        self.cost -= cost
        left = self._per_nick[nick] - 1
        if left:
            self._per_nick[nick] = left
        else:
            del self._per_nick[nick]

    def _expire(self, now: float) -> None:
        # Oldest first; stops at the first entry that must stay (amortised O(1)).
        entries = self._entries
        while entries:
            (nick, key), (at, _, cost) = next(iter(entries.items()))
            expired = now - at >= self._ttl and self._per_nick[nick] > self._keep
            if not expired and self.cost <= self._budget:
                return
            if now - at < self._ttl:
                self._short_until = max(self._short_until, at + self._ttl)
            del entries[(nick, key)]
            self._forget(nick, cost)
