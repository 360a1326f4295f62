"""The relay: one thread per cluster node that reads Redis streams and fans out.

It blocks in one `XREAD` on the streams of every room a client of this node
is in, on the node's inbox (direct messages) and on the cluster's events
(renames), and queues what it reads for the local clients, in stream order,
under the hub lock. A room's stream order is the same for every node, so
every member, on any node, sees the room in one order. If Redis trimmed a
room's stream past the point this node had read to (the node fell behind by
more than the cap), the room's local members are dropped as slow consumers:
they reconnect and page `history` rather than miss messages unnoticed.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import Any

from chatproto import (
    DirectMessage,
    ErrorCode,
    LeaveReason,
    MemberJoined,
    MemberLeft,
    Renamed,
    RequestId,
)
from chatserver.housekeeping import kick
from chatserver.hub import Hub, Room, fold
from chatserver.logs import log_failure
from chatserver.outbound import Outbox
from chatserver.redis_client import OUTAGES, Entry, OutageLog, entry_number, message_of
from chatserver.session import Session

__all__ = ["Pending", "Relay"]

log = logging.getLogger(__name__)

_COUNT = 1000  # entries per stream per read
_BLOCK_MS = 1000
_ROOM = "chat:log:"
_EVENTS = "chat:events"


@dataclass(frozen=True, slots=True)
class Pending:
    """A sender waiting for its own message or topic to come back from Redis."""

    session: Session
    ref: RequestId | None
    done: threading.Event | None


class Relay(threading.Thread):
    def __init__(
        self, hub: Hub, client: Any, node: str, pending: dict[str, Pending], *, cap: int
    ) -> None:
        super().__init__(name="chat-relay", daemon=True)
        self._hub = hub
        self._redis = client
        self._inbox = f"chat:inbox:{node}"
        self._pending = pending
        # A room read this far behind may have been trimmed past this node's
        # position (a stream keeps at least `cap` entries): look then.
        self._suspect = min(_COUNT, cap)
        self._halt = threading.Event()
        self._positions = {self._inbox: "0-0", _EVENTS: "0-0"}
        self._outage = OutageLog(log, "relay")

    def prime(self) -> None:
        """Start the events stream from its end: renames before this node are not ours."""
        newest = self._redis.xrevrange(_EVENTS, "+", "-", 1)
        if newest:
            self._positions[_EVENTS] = newest[0][0]

    def restart(self) -> None:
        """Read the inbox and events from their start: Redis lost its data.
        Under the hub lock, as the relay's own updates of its positions."""
        self._positions = {self._inbox: "0-0", _EVENTS: "0-0"}

    def wake(self, client: Any) -> None:
        """Make the relay read again now, e.g. to take in a room it did not follow."""
        with contextlib.suppress(*OUTAGES):
            client.xadd(self._inbox, {"k": "w"}, maxlen=1000, approximate=True)

    def stop(self) -> None:
        self._halt.set()
        with contextlib.suppress(*OUTAGES):
            self._redis.connection_pool.disconnect()

    def run(self) -> None:
        delay = 0.1
        while not self._halt.is_set():
            try:
                self._round()
            except OUTAGES as exc:
                if self._halt.is_set():
                    return
                self._outage.down(exc)
                self._halt.wait(delay)
                delay = min(2.0, delay * 2)
                continue
            except Exception:
                if self._halt.is_set():
                    return
                log_failure(log, "relay failed a round")
                self._halt.wait(delay)
                continue
            self._outage.up()
            delay = 0.1

    def _round(self) -> None:
        hub = self._hub
        with hub.lock:
            streams = {_ROOM + name: f"{room.last}-0" for name, room in hub.rooms.items()}
        streams.update(self._positions)
        reply: list[tuple[str, list[Entry]]] = self._redis.xread(
            streams, count=_COUNT, block=_BLOCK_MS
        )
        behind: list[tuple[str, int]] = []
        with hub.lock:
            for key, entries in reply or ():
                if key == self._inbox:
                    self._direct(entries)
                elif key == _EVENTS:
                    self._renames(entries)
                else:
                    room = hub.rooms.get(key[len(_ROOM) :])
                    if room is not None:
                        start = room.last
                        self._apply(room, entries)
                        if len(entries) >= self._suspect:
                            behind.append((room.name, start))
                if entries and key in self._positions:
                    self._positions[key] = entries[-1][0]
        hub.writer.wake()
        for name, start in behind:
            self._check_trimmed(name, start)

    # -- under the hub lock ------------------------------------------------------

    def _apply(self, room: Room, entries: list[Entry]) -> None:
        hub = self._hub
        for entry_id, fields in entries:
            number = entry_number(entry_id)
            if number <= room.last:
                continue  # read already, before this node followed the room again
            room.last = number
            kind = fields.get("k")
            if kind == "m":
                pending = self._pending.pop(fields.get("tok", ""), None)
                message = message_of(room.name, entry_id, fields)
                if pending is None:
                    hub.publish(message, None, None)
                else:
                    hub.publish(message, pending.session, pending.ref)
            elif kind == "j":
                joiner = room.members.get(fold(fields["nick"]))
                hub.announce(room.boxes, MemberJoined(room=room.name, nick=fields["nick"]), joiner)
            elif kind == "l":
                reason = LeaveReason(fields.get("reason", LeaveReason.LOST.value))
                event = MemberLeft(room=room.name, nick=fields["nick"], reason=reason)
                # Not to the leaver, if the relay is quicker than its `part`.
                hub.announce(room.boxes, event, room.members.get(fold(fields["nick"])))
            elif kind == "t":
                pending = self._pending.pop(fields.get("tok", ""), None)
                sender = pending.session if pending is not None else None
                ref = pending.ref if pending is not None else None
                hub.publish_topic(room.name, fields["topic"], fields["nick"], sender, ref)
                if pending is not None and pending.done is not None:
                    pending.done.set()

    def _direct(self, entries: list[Entry]) -> None:
        hub = self._hub
        for _, fields in entries:
            if fields.get("k") != "d" or fold(fields["nick"]) == fold(fields["to"]):
                continue  # a wake-up, or a note to oneself (answered already)
            target = hub.local(fields["to"])
            if target is not None:
                hub.deliver(
                    target,
                    DirectMessage(
                        id=int(fields["id"]),
                        nick=fields["nick"],
                        to=fields["to"],
                        text=fields["text"],
                        ts=int(fields["ts"]),
                    ),
                )

    def _renames(self, entries: list[Entry]) -> None:
        hub = self._hub
        for _, fields in entries:
            if fields.get("k") != "r":
                continue
            old, new = fields["old"], fields["new"]
            renamer = {fold(old), fold(new)}
            audience: dict[int, Outbox] = {}
            for name in fields["rooms"].split():
                room = hub.rooms.get(name)
                if room is None:
                    continue
                for key, session in room.members.items():
                    if key not in renamer:
                        audience[id(session.box)] = session.box
            if audience:
                hub.announce(audience.values(), Renamed(old=old, new=new))

    # -- outside the lock ----------------------------------------------------------

    def _check_trimmed(self, name: str, start: int) -> None:
        oldest = self._redis.xrange(_ROOM + name, "-", "+", 1)
        if not oldest or entry_number(oldest[0][0]) <= start:
            return
        hub = self._hub
        with hub.lock:
            room = hub.rooms.get(name)
            members = list(room.members.values()) if room is not None else []
        log.warning("fell behind room %s past its stream's cap; dropping its members here", name)
        for session in members:
            kick(
                hub,
                session,
                ErrorCode.SLOW_CONSUMER,
                "this server fell behind the room; reconnect to catch up from history",
                LeaveReason.KICKED,
            )
