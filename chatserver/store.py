"""The storage interface, and the bounded in-memory store.

Only the sequencer thread writes (`commit`), in batches, so a back end needs
no write concurrency of its own; `history` may be called from any thread.
"""

from __future__ import annotations

import secrets
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field

from chatproto import RoomMessage

__all__ = ["Batch", "KeyedMessage", "MemoryStore", "RoomRecord", "Snapshot", "Store", "new_epoch"]


def new_epoch() -> str:
    """A fresh name for a generation of stored state (PROTOCOL.md 13)."""
    return secrets.token_urlsafe(12)


@dataclass(slots=True)
class RoomRecord:
    """A stored room: its topic and its latest messages, oldest first."""

    topic: str = ""
    recent: list[RoomMessage] = field(default_factory=list)
    older: bool = False  # whether messages older than `recent` are stored


@dataclass(frozen=True, slots=True)
class KeyedMessage:
    """A stored message that was sent with an idempotency key."""

    nick: str  # folded
    key: str
    room: str
    id: int
    ts: int


@dataclass(slots=True)
class Snapshot:
    """What a store holds at start-up: where ids go on, every room, the generation
    of the state (`epoch`) and the keyed messages of the last minutes."""

    next_id: int
    rooms: dict[str, RoomRecord]
    epoch: str
    keyed: list[KeyedMessage] = field(default_factory=list)


@dataclass(slots=True)
class Batch:
    """Writes that become durable together, in one transaction."""

    rooms: list[str] = field(default_factory=list)
    topics: dict[str, str] = field(default_factory=dict)
    messages: list[RoomMessage] = field(default_factory=list)
    accounts: dict[str, str] = field(default_factory=dict)  # folded nick -> password hash
    keys: dict[int, tuple[str, str]] = field(default_factory=dict)  # id -> (folded nick, key)


class Store(ABC):
    """Where rooms, topics and room messages live."""

    @abstractmethod
    def load(self, recent: int, *, keys_since: int = 0) -> Snapshot:
        """Read the state to start from, with up to `recent` messages per room and
        the keyed messages stored at or after `keys_since` (ms since the epoch)."""

    @abstractmethod
    def commit(self, batch: Batch) -> None:
        """Make `batch` durable; when this returns, a crash does not lose it."""

    @abstractmethod
    def history(
        self, room: str, *, before: int | None, after: int | None, limit: int
    ) -> tuple[list[RoomMessage], bool]:
        """A page of `room`, oldest first, and whether more lie beyond it."""

    @abstractmethod
    def message(self, room: str, id: int) -> RoomMessage | None:
        """The stored message `id` of `room`, or None if it is not kept."""

    def keyed(self, nick: str, key: str) -> RoomMessage | None:
        """The stored message sent by (folded) `nick` with `key`, if the store
        keeps keys (the memory store does not)."""
        return None

    @abstractmethod
    def account(self, nick: str) -> str | None:
        """The password hash of a registered (folded) nick, or None."""

    @abstractmethod
    def close(self) -> None:
        """Release the store; nothing may be called after."""


class MemoryStore(Store):
    """Keeps the last `capacity` messages of each room, and nothing after exit.

    Every instance is a new generation (epoch). Its first id comes from the
    clock (milliseconds x 1024, below 2**53 until about the year 2248), so ids
    still increase across restarts unless a run averaged over 1024 messages
    per millisecond."""

    def __init__(self, capacity: int = 1000) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._rooms: dict[str, RoomRecord] = {}
        self._messages: dict[str, deque[RoomMessage]] = {}
        self._accounts: dict[str, str] = {}
        self._last_id = 0
        self._epoch = new_epoch()

    def load(self, recent: int, *, keys_since: int = 0) -> Snapshot:
        with self._lock:
            rooms = {
                name: RoomRecord(
                    rec.topic,
                    list(self._messages[name])[-recent:] if recent else [],
                    len(self._messages[name]) > recent,
                )
                for name, rec in self._rooms.items()
            }
            first = max(self._last_id + 1, time.time_ns() // 1_000_000 * 1024)
            return Snapshot(first, rooms, self._epoch)

    def commit(self, batch: Batch) -> None:
        with self._lock:
            for name in batch.rooms:
                if name not in self._rooms:
                    self._rooms[name] = RoomRecord()
                    self._messages[name] = deque(maxlen=self._capacity)
            for name, topic in batch.topics.items():
                self._rooms[name].topic = topic
            for message in batch.messages:
                self._messages[message.room].append(message)
                self._last_id = message.id
            self._accounts.update(batch.accounts)

    def account(self, nick: str) -> str | None:
        with self._lock:
            return self._accounts.get(nick)

    def message(self, room: str, id: int) -> RoomMessage | None:
        with self._lock:
            for message in self._messages.get(room, ()):
                if message.id == id:
                    return message
        return None

    def history(
        self, room: str, *, before: int | None, after: int | None, limit: int
    ) -> tuple[list[RoomMessage], bool]:
        with self._lock:
            messages = list(self._messages.get(room, ()))
        if after is not None:
            newer = [m for m in messages if m.id > after]
            return newer[:limit], len(newer) > limit
        older = [m for m in messages if before is None or m.id < before]
        return older[-limit:], len(older) > limit

    def close(self) -> None:
        with self._lock:
            self._rooms.clear()
            self._messages.clear()
