"""The storage interface, and the bounded in-memory store.

Only the sequencer thread writes (`commit`), in batches, so a back end needs
no write concurrency of its own; `history` may be called from any thread.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field

from chatproto import RoomMessage

__all__ = ["Batch", "MemoryStore", "RoomRecord", "Snapshot", "Store"]


@dataclass(slots=True)
class RoomRecord:
    """A stored room: its topic and its latest messages, oldest first."""

    topic: str = ""
    recent: list[RoomMessage] = field(default_factory=list)


@dataclass(slots=True)
class Snapshot:
    """What a store holds at start-up: where ids go on, and every room."""

    next_id: int
    rooms: dict[str, RoomRecord]


@dataclass(slots=True)
class Batch:
    """Writes that become durable together, in one transaction."""

    rooms: list[str] = field(default_factory=list)
    topics: dict[str, str] = field(default_factory=dict)
    messages: list[RoomMessage] = field(default_factory=list)
    accounts: dict[str, str] = field(default_factory=dict)  # folded nick -> password hash


class Store(ABC):
    """Where rooms, topics and room messages live."""

    @abstractmethod
    def load(self, recent: int) -> Snapshot:
        """Read the state to start from, with up to `recent` messages per room."""

    @abstractmethod
    def commit(self, batch: Batch) -> None:
        """Make `batch` durable; when this returns, a crash does not lose it."""

    @abstractmethod
    def history(
        self, room: str, *, before: int | None, after: int | None, limit: int
    ) -> tuple[list[RoomMessage], bool]:
        """A page of `room`, oldest first, and whether more lie beyond it."""

    @abstractmethod
    def account(self, nick: str) -> str | None:
        """The password hash of a registered (folded) nick, or None."""

    @abstractmethod
    def close(self) -> None:
        """Release the store; nothing may be called after."""


class MemoryStore(Store):
    """Keeps the last `capacity` messages of each room, and nothing after exit."""

    def __init__(self, capacity: int = 1000) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._rooms: dict[str, RoomRecord] = {}
        self._messages: dict[str, deque[RoomMessage]] = {}
        self._accounts: dict[str, str] = {}
        self._last_id = 0

    def load(self, recent: int) -> Snapshot:
        with self._lock:
            rooms = {
                name: RoomRecord(rec.topic, list(self._messages[name])[-recent:] if recent else [])
                for name, rec in self._rooms.items()
            }
            return Snapshot(self._last_id + 1, rooms)

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
