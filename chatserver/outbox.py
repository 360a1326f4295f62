"""One connection's send queue, and the limits on what its reader fails to take.

The limits judge the reader, not the server: a burst of large messages may
queue megabytes for a reader at once, and a reader that keeps up takes them
as fast as the socket lets it. So:

- the soft limit times the backlog (bytes queued and not yet taken by the
  kernel): a timer starts when it passes `soft` and is cleared, under the
  same lock, as soon as a send brings it back under; above it for too long
  (the housekeeper's patience) and the connection is dropped;
- the hard limit drops a connection at once when its backlog passes `hard`
  while its socket is full and has taken nothing for `stall` seconds: the
  writer tried, and the reader did not take it.

A reader that keeps reading makes its socket writable again within moments,
so neither limit touches it however large the burst; a reader that stops is
dropped as soon as its queue passes the hard limit.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Outbox", "QueueLimits"]


@dataclass(frozen=True, slots=True)
class QueueLimits:
    soft: int
    hard: int
    stall: float = 0.1  # seconds a full socket may take nothing before `hard` applies


class Outbox:
    """One connection's send queue and sending state.

    `farewell` gives the last frame to send if the connection is dropped.

    `frames`, `queued`, `sent`, `soft_since` and `scheduled` are guarded by the
    hub lock; `pending` (the unsent tail of the last send), `blocked` and
    `progress_at` belong to the writer thread (read, not written, by others).
    """

    __slots__ = (
        "blocked",
        "closed",
        "drop_frame",
        "dropped",
        "farewell",
        "finish_by",
        "finishing",
        "frames",
        "label",
        "lingering",
        "pending",
        "progress_at",
        "queued",
        "scheduled",
        "seal",
        "sent",
        "sock",
        "soft_since",
        "watching",
    )

    def __init__(
        self, sock: socket.socket, label: str, farewell: Callable[[], bytes | None]
    ) -> None:
        self.sock = sock
        self.label = label
        self.farewell = farewell
        self.frames: list[bytes] = []
        self.queued = 0
        self.sent = 0
        self.scheduled = False
        self.pending = b""
        self.blocked = False
        self.progress_at = time.monotonic()  # the socket last took bytes or had room
        self.soft_since: float | None = None
        self.dropped = False
        self.drop_frame: bytes | None = None
        self.finishing = False
        self.finish_by = 0.0
        self.lingering = False
        self.watching = 0  # the selector events registered for this socket
        self.closed = False
        self.seal: Callable[[bytes], bytes] | None = None  # encrypts, on a TLS connection

    @property
    def backlog(self) -> int:
        """Bytes queued and not yet taken by the kernel."""
        return self.queued - self.sent

    def append(self, data: bytes, limits: QueueLimits) -> bool:
        """Queue `data` (under the hub lock); True if the reader has failed to take
        more than the hard limit, and the box must be dropped."""
        self.frames.append(data)
        self.queued += len(data)
        backlog = self.queued - self.sent
        if backlog <= limits.soft:
            return False
        now = time.monotonic()
        if self.soft_since is None:
            self.soft_since = now
        return self._stalled(backlog, limits, now)

    def record_send(
        self, count: int, *, full: bool, limits: QueueLimits, lock: threading.Lock
    ) -> None:
        """The writer's account of one send: the kernel took `count` bytes; `full`:
        it would not take all. Clears the soft timer under `lock`, the lock under
        which `append` sets it, so that a queue above the soft limit always has one."""
        now = time.monotonic()
        if count or not full:
            self.progress_at = now
        self.blocked = full
        with lock:
            self.sent += count
            if self.soft_since is not None and self.queued - self.sent <= limits.soft:
                self.soft_since = None

    def overdue(self, limits: QueueLimits, patience: float, now: float) -> bool:
        """Under the hub lock: above the soft limit for `patience` seconds, or past
        the hard one with a stalled socket."""
        if self.dropped:
            return False
        since = self.soft_since
        if since is not None and now - since >= patience:
            return True
        return self._stalled(self.queued - self.sent, limits, now)

    def _stalled(self, backlog: int, limits: QueueLimits, now: float) -> bool:
        return backlog > limits.hard and self.blocked and now - self.progress_at >= limits.stall
