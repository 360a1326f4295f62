"""Missing nothing across reconnections (PROTOCOL.md sections 12 and 13).

Message ids strictly increase within a room, and each member receives a
room's messages in id order, so one number per room (the highest id seen) is
both the point to resume from and a complete duplicate filter.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from chatproto import MAX_HISTORY_PAGE, History, HistoryPage, Joined, RoomMessage

__all__ = ["Tracker", "missed"]


class Tracker:
    """The highest message id seen in each joined room. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}

    def joined(self, reply: Joined) -> None:
        """Start (or refresh) a room from its `joined` reply. 0 means: empty when joined."""
        last = reply.history[-1].id if reply.history else 0
        with self._lock:
            self._seen[reply.room] = max(self._seen.get(reply.room, 0), last)

    def raise_floor(self, room: str, message_id: int) -> None:
        """Treat everything up to `message_id` as seen."""
        with self._lock:
            if room in self._seen:
                self._seen[room] = max(self._seen[room], message_id)

    def fresh(self, message: RoomMessage) -> bool:
        """Whether `message` is new; if so it is recorded as seen."""
        with self._lock:
            seen = self._seen.get(message.room)
            if seen is None:
                return True  # not a room we track (a message that crossed our `part`)
            if message.id <= seen:
                return False
            self._seen[message.room] = message.id
            return True

    def forget(self, room: str) -> None:
        with self._lock:
            self._seen.pop(room, None)

    def resume_point(self, room: str) -> int:
        """The highest id seen in `room` (0 if none)."""
        with self._lock:
            return self._seen.get(room, 0)


def missed(
    room: str, seen: int, joined: Joined, fetch: Callable[[History], HistoryPage]
) -> list[RoomMessage]:
    """Every stored message of `room` with an id above `seen`, oldest first.

    `joined` is the reply to joining again; `fetch` asks the server for a
    history page. `seen` 0 means the room had no messages when it was first
    joined, so everything it holds now is new.
    """
    recent = joined.history
    if seen and recent and recent[0].id <= seen:
        # The replayed history reaches back far enough on its own.
        return [m for m in recent if m.id > seen]
    found: list[RoomMessage] = list(recent)
    if seen:
        after = seen
        while True:
            page = fetch(History(room=room, after=after, limit=MAX_HISTORY_PAGE))
            found.extend(page.messages)
            if not page.more or not page.messages:
                break
            after = page.messages[-1].id
    else:
        before = recent[0].id if recent else None
        while True:
            page = fetch(History(room=room, before=before, limit=MAX_HISTORY_PAGE))
            found.extend(page.messages)
            if not page.more or not page.messages:
                break
            before = page.messages[0].id
    unique = {m.id: m for m in found if m.id > seen}
    return [unique[i] for i in sorted(unique)]
