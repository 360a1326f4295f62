"""A bounded, closable event queue that never blocks its producer.

The producer is the receive thread: if it waited for a slow reader, replies
to requests would wait too. So a full queue drops new events instead, and
leaves an `EventsDropped` marker where they would have been.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from chatclient.errors import ConnectionLost
from chatclient.events import ClientEvent, EventsDropped

__all__ = ["Inbox"]


class Inbox:
    """Holds at most `capacity` events (markers not counted) until `get` takes them."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.dropped = 0
        self._items: deque[ClientEvent] = deque()
        self._events = 0  # items that are not markers
        self._lost = 0  # dropped since the last marker
        self._finished: ConnectionLost | None = None
        self._cond = threading.Condition()

    def put(self, event: ClientEvent) -> bool:
        """Queue `event`; False if the queue was full (or closed) and it was dropped."""
        with self._cond:
            if self._finished is not None:
                return False
            if self._lost and self._events < self.capacity:
                self._items.append(EventsDropped(self._lost))
                self._lost = 0
            if self._events >= self.capacity:
                self._lost += 1
                self.dropped += 1
                return False
            self._items.append(event)
            self._events += 1
            self._cond.notify()
            return True

    def finish(self, reason: ConnectionLost) -> None:
        """No more events will come; readers get what is queued, then `reason` is raised."""
        with self._cond:
            if self._finished is None:
                self._finished = reason
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> ClientEvent:
        """The next event. Raises `TimeoutError`, or `ConnectionLost` once finished and empty."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._items:
                    item = self._items.popleft()
                    if not isinstance(item, EventsDropped):
                        self._events -= 1
                    return item
                if self._lost:
                    lost, self._lost = self._lost, 0
                    return EventsDropped(lost)
                if self._finished is not None:
                    # A fresh exception each time: one instance raised twice grows its traceback.
                    raise type(self._finished)(*self._finished.args)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError("no event arrived in time")
                self._cond.wait(remaining)
