"""The shared state: who is connected under which nick, and who is in which room.

One lock guards it all. Work under the lock is memory only (lookups, encoding,
queueing bytes); sockets and disk are touched elsewhere. Each broadcast is
encoded once and the same bytes are queued for every recipient.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from chatproto import (
    DirectMessage,
    Error,
    ErrorCode,
    Event,
    Joined,
    LeaveReason,
    MemberJoined,
    MemberLeft,
    Renamed,
    RequestId,
    RoomInfo,
    RoomMessage,
    TopicChanged,
    encode,
)
from chatserver.outbound import Outbox, Writer
from chatserver.session import Session
from chatserver.store import RoomRecord

__all__ = ["Hub", "Room", "fold"]


def _fit(reply: Joined, max_frame: int) -> Joined:
    # Drop the oldest history until the reply fits in one frame.
    while reply.history and len(encode(reply)) > max_frame:
        reply = reply.model_copy(update={"history": reply.history[len(reply.history) // 2 + 1 :]})
    return reply


def fold(nick: str) -> str:
    """The key under which nicks are unique: ASCII case folded."""
    return nick.lower()


@dataclass(slots=True)
class Room:
    name: str
    topic: str
    recent: deque[RoomMessage]
    members: dict[str, Session] = field(default_factory=dict)
    boxes: list[Outbox] = field(default_factory=list)
    last: int = 0  # in a cluster: the id of the last stream entry applied

    def _rebuild(self) -> None:
        self.boxes = [s.box for s in self.members.values()]


class Hub:
    def __init__(
        self, lock: threading.Lock, writer: Writer, rooms: dict[str, RoomRecord], history: int
    ) -> None:
        self.lock = lock
        self.writer = writer
        self.sessions: set[Session] = set()
        self._nicks: dict[str, Session] = {}
        self._per_address: dict[str, int] = {}
        self._history = history
        self.rooms: dict[str, Room] = {
            name: Room(name, rec.topic, deque(rec.recent, maxlen=history))
            for name, rec in rooms.items()
        }
        self._dm_ids = 0

    # -- queueing, under the lock --------------------------------------------

    def _send(self, session: Session, event: Event) -> None:
        data = session.encode(event)
        if data is not None:
            self.writer.push(session.box, data)
            if isinstance(event, Error) and event.fatal:
                # A fatal error is the last frame of a session (PROTOCOL.md 8):
                # broadcasts must not reach the box while the session ends.
                session.box.dropped = True

    def send_raw(self, session: Session, data: bytes) -> None:
        """Queue bytes (empty: only a flush) for one session."""
        with self.lock:
            self.writer.push(session.box, data)
        self.writer.wake()

    def send(self, session: Session, event: Event) -> None:
        """Queue one event for one session."""
        with self.lock:
            self._send(session, event)
        self.writer.wake()

    def _broadcast(
        self, boxes: Iterable[Outbox], event: Event, skip: Session | None = None
    ) -> None:
        self.writer.push_many(boxes, encode(event), skip.box if skip is not None else None)

    # -- connections -----------------------------------------------------

    def add(self, session: Session, limit: int, per_address: int) -> tuple[ErrorCode, str] | None:
        """Admit a new connection, or say why not."""
        with self.lock:
            if len(self.sessions) >= limit:
                return ErrorCode.SERVER_FULL, "the server is full; try again later"
            if self._per_address.get(session.host, 0) >= per_address:
                return (
                    ErrorCode.TOO_MANY_CONNECTIONS,
                    f"your address has {per_address} connections, the most allowed",
                )
            self.sessions.add(session)
            self._per_address[session.host] = self._per_address.get(session.host, 0) + 1
            return None

    def readdress(
        self, session: Session, host: str, per_address: int
    ) -> tuple[ErrorCode, str] | None:
        """Count `session` under the client address `host` that a trusted proxy gave,
        or say why not (that address has `per_address` connections already)."""
        with self.lock:
            if self._per_address.get(host, 0) >= per_address:
                return (
                    ErrorCode.TOO_MANY_CONNECTIONS,
                    f"your address has {per_address} connections, the most allowed",
                )
            if session in self.sessions:
                left = self._per_address[session.host] - 1
                if left:
                    self._per_address[session.host] = left
                else:
                    del self._per_address[session.host]
                self._per_address[host] = self._per_address.get(host, 0) + 1
            session.peer = f"{host} via {session.peer}"
            session.host = host
            return None

    def claim(self, session: Session, nick: str) -> bool:
        """Give `session` its first nick, if nobody has it."""
        with self.lock:
            if fold(nick) in self._nicks:
                return False
            self._nicks[fold(nick)] = session
            session.nick = nick
            return True

    def remove(self, session: Session, reason: LeaveReason, *, tell: bool = True) -> None:
        """Forget a connection that has ended and tell its rooms why."""
        with self.lock:
            self._unregister(session)
            for name in session.rooms:
                room = self.rooms[name]
                self._leave(room, session)
                if tell and room.boxes:
                    self._broadcast(
                        room.boxes, MemberLeft(room=name, nick=session.nick or "", reason=reason)
                    )
            session.rooms = set()
        self.writer.wake()

    def _unregister(self, session: Session) -> None:
        if session in self.sessions:
            self.sessions.discard(session)
            left = self._per_address[session.host] - 1
            if left:
                self._per_address[session.host] = left
            else:
                del self._per_address[session.host]
        if session.nick is not None and self._nicks.get(fold(session.nick)) is session:
            del self._nicks[fold(session.nick)]

    def _take_nick(self, session: Session, new: str) -> list[Room]:
        """Move `session` to nick `new` here; the rooms here it is in."""
        old = session.nick
        assert old is not None
        if self._nicks.get(fold(old)) is session:
            del self._nicks[fold(old)]
        self._nicks[fold(new)] = session
        session.nick = new
        rooms = [self.rooms[name] for name in session.rooms if name in self.rooms]
        for room in rooms:
            room.members.pop(fold(old), None)
            room.members[fold(new)] = session
        return rooms

    def _leave(self, room: Room, session: Session) -> None:
        if session.nick is not None:
            room.members.pop(fold(session.nick), None)
            room._rebuild()

    # -- commands --------------------------------------------------------

    def join(
        self, session: Session, name: str, ref: RequestId | None, max_frame: int, max_members: int
    ) -> bool:
        """Add `session` to room `name` (created if new) and queue its `joined`;
        False if the room is full."""
        assert session.nick is not None
        with self.lock:
            room = self.rooms.get(name)
            if room is None:
                room = self.rooms[name] = Room(name, "", deque(maxlen=self._history))
            key = fold(session.nick)
            if key not in room.members:
                if len(room.members) >= max_members:
                    return False
                if room.boxes:
                    self._broadcast(room.boxes, MemberJoined(room=name, nick=session.nick))
                room.members[key] = session
                room._rebuild()
                session.rooms.add(name)
            reply = Joined(
                ref=ref,
                room=name,
                topic=room.topic,
                members=[s.nick for s in room.members.values() if s.nick is not None],
                history=list(room.recent),
            )
            self._send(session, _fit(reply, max_frame))
        self.writer.wake()
        return True

    def part(self, session: Session, name: str) -> bool:
        """Take `session` out of room `name`; False if it was not in it."""
        assert session.nick is not None
        with self.lock:
            room = self.rooms.get(name)
            if room is None or name not in session.rooms:
                return False
            self._leave(room, session)
            session.rooms.discard(name)
            if room.boxes:
                self._broadcast(
                    room.boxes, MemberLeft(room=name, nick=session.nick, reason=LeaveReason.PART)
                )
        self.writer.wake()
        return True

    def rename(self, session: Session, new: str, ref: RequestId | None) -> bool:
        """Change `session`'s nick and tell everyone who shares a room; False if taken."""
        old = session.nick
        assert old is not None
        with self.lock:
            holder = self._nicks.get(fold(new))
            if holder is not None and holder is not session:
                return False
            audience: dict[int, Outbox] = {}
            for room in self._take_nick(session, new):
                for box in room.boxes:
                    audience[id(box)] = box
            event = Renamed(old=old, new=new)
            self._broadcast(audience.values(), event, skip=session)
            self._send(session, event.model_copy(update={"ref": ref}))
        self.writer.wake()
        return True

    def direct(self, session: Session, to: str, text: str, ts: int, ref: RequestId | None) -> bool:
        """Deliver a direct message; False if nobody has nick `to`."""
        assert session.nick is not None
        with self.lock:
            target = self._nicks.get(fold(to))
            if target is None:
                return False
            self._dm_ids += 1
            event = DirectMessage(
                id=self._dm_ids, nick=session.nick, to=target.nick or to, text=text, ts=ts
            )
            if target is not session:
                self._send(target, event)
            self._send(session, event.model_copy(update={"ref": ref}))
        self.writer.wake()
        return True

    def room_list(self) -> list[RoomInfo]:
        with self.lock:
            rows = [
                RoomInfo(room=r.name, members=len(r.members), topic=r.topic)
                for r in self.rooms.values()
                if r.members
            ]
        rows.sort(key=lambda r: (-r.members, r.room))
        return rows

    def members(self, name: str) -> list[str] | None:
        with self.lock:
            room = self.rooms.get(name)
            if room is None:
                return None
            return [s.nick for s in room.members.values() if s.nick is not None]

    def exists(self, name: str) -> bool:
        with self.lock:
            return name in self.rooms

    # -- the sequencer's fan-out, under the lock ------------------------------

    def publish(self, message: RoomMessage, sender: Session | None, ref: RequestId | None) -> None:
        """Queue a stored message for every member; calls fix the order everyone sees.

        The sender (None: not connected here) gets its echo with `ref`."""
        room = self.rooms[message.room]
        room.recent.append(message)
        self._broadcast(room.boxes, message, skip=sender)
        if sender is not None:
            self._send(sender, message.model_copy(update={"ref": ref}))

    def publish_topic(
        self, name: str, topic: str, nick: str, sender: Session | None, ref: RequestId | None
    ) -> None:
        """Queue a stored topic change for every member."""
        room = self.rooms[name]
        room.topic = topic
        event = TopicChanged(room=name, topic=topic, nick=nick)
        self._broadcast(room.boxes, event, skip=sender)
        if sender is not None:
            self._send(sender, event.model_copy(update={"ref": ref}))

    # -- in a cluster: this node's view of shared rooms, under the lock -------

    def announce(self, boxes: Iterable[Outbox], event: Event, skip: Session | None = None) -> None:
        """Queue one event, encoded once, for the given connections."""
        self._broadcast(boxes, event, skip)

    def local(self, nick: str) -> Session | None:
        """The session connected here under `nick`, if any."""
        return self._nicks.get(fold(nick))

    def deliver(self, session: Session, event: Event) -> None:
        """Queue one event for one session."""
        self._send(session, event)

    def follow(self, name: str, topic: str, recent: list[RoomMessage], last: int) -> None:
        """Start following a room from stream entry `last`, unless it is followed already."""
        with self.lock:
            if name not in self.rooms:
                room = Room(name, topic, deque(recent, maxlen=self._history), last=last)
                self.rooms[name] = room

    def enter(
        self,
        session: Session,
        name: str,
        *,
        ref: RequestId | None,
        topic: str,
        members: list[str],
        max_frame: int,
    ) -> bool:
        """Add `session` to a followed room and queue its `joined`; False if not followed."""
        assert session.nick is not None
        with self.lock:
            room = self.rooms.get(name)
            if room is None:
                return False
            room.members[fold(session.nick)] = session
            room._rebuild()
            session.rooms.add(name)
            reply = Joined(
                ref=ref, room=name, topic=topic, members=members, history=list(room.recent)
            )
            self._send(session, _fit(reply, max_frame))
        self.writer.wake()
        return True

    def withdraw(self, session: Session, names: Iterable[str]) -> None:
        """Take `session` out of rooms here; no one is told: the cluster does that.

        The room stays followed, so that echoes of messages its members sent
        just before they left still reach them."""
        with self.lock:
            for name in names:
                room = self.rooms.get(name)
                session.rooms.discard(name)
                if room is not None:
                    self._leave(room, session)

    def retag(self, session: Session, new: str, ref: RequestId | None) -> None:
        """Record here a rename the cluster has made, and answer its sender."""
        old = session.nick
        assert old is not None
        with self.lock:
            self._take_nick(session, new)
            self._send(session, Renamed(ref=ref, old=old, new=new))
        self.writer.wake()

    def forget(self, session: Session) -> None:
        """Forget a connection here; its rooms are told by the cluster."""
        self.withdraw(session, list(session.rooms))
        with self.lock:
            self._unregister(session)
        self.writer.wake()

    def broadcast_all(self, event: Event) -> None:
        """Queue one event for every connection (used for shutdown notices)."""
        with self.lock:
            for session in self.sessions:
                self._send(session, event)
        self.writer.wake()
