"""Events the library adds to the server's own: what happened to the connection.

They travel the same path as the protocol's events (the callback and the
queue), in order with them, so a reader sees, for example, a `Disconnected`
exactly where the stream of messages was interrupted.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatproto import Error, Event, Joined, Welcome

__all__ = [
    "ClientEvent",
    "Disconnected",
    "EventsDropped",
    "LibraryEvent",
    "Reconnected",
    "Reconnecting",
    "RejoinFailed",
]


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection broke. With `reconnecting` False this is the client's last event."""

    reason: str
    error: Error | None = None
    reconnecting: bool = False


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """Attempt number `attempt` will start in `delay` seconds; `error` says why the last failed."""

    attempt: int
    delay: float
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Reconnected:
    """The session is back and `rooms` rejoined; the `recovered` missed room messages follow.

    `epoch_changed` says the server lost its stored state meanwhile (PROTOCOL.md
    section 13): what it missed before the loss cannot be fetched, and the
    recovered messages are those each room's `joined` replayed.
    """

    welcome: Welcome
    attempts: int
    rooms: tuple[Joined, ...]
    recovered: int
    epoch_changed: bool = False


@dataclass(frozen=True, slots=True)
class RejoinFailed:
    """After reconnecting, `room` refused to take this client back (`code`, e.g. `room_full`).

    The client is no longer in that room; the other rooms were rejoined.
    """

    room: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class EventsDropped:
    """The event queue was full and `count` events were not queued at this point."""

    count: int


LibraryEvent = Disconnected | Reconnecting | Reconnected | RejoinFailed | EventsDropped
#: Anything a client delivers: an event from the server (never a reply) or a library event.
ClientEvent = Event | LibraryEvent
