"""The shared state: who is connected under which nick, and who is in which room.

One lock guards it all. Work under the lock is memory only (lookups, encoding,
queueing bytes); sockets and disk are touched elsewhere. Each broadcast is
encoded once and the same bytes are queued for every recipient.

Rooms of any size (PROTOCOL.md 1.3): a room keeps its members in folded-nick
order, so that a page of them costs O(log n + page) and a join O(log n). In a
room with more than `large_room` members nobody is told of each arrival and
departure; everyone gets the member count instead when it has moved by 10%
since the last one announced, or the room became large or small. Filling a
room of n members so costs O(n) frames in all, not n**2 / 2.
"""

from __future__ import annotations

import secrets
import threading
from collections import deque
from collections.abc import Iterable

from sortedcontainers import SortedList, SortedSet

from chatproto import (
    MAX_LIST_PAGE,
    DirectMessage,
    Error,
    ErrorCode,
    Event,
    Joined,
    LeaveReason,
    MemberCount,
    MemberJoined,
    MemberLeft,
    Renamed,
    RequestId,
    RoomInfo,
    RoomMessage,
    TopicChanged,
    encode,
)
from chatserver.keys import RecentKeys
from chatserver.outbound import Outbox, Writer
from chatserver.session import Session
from chatserver.store import RoomRecord

__all__ = ["Hub", "Room", "fold"]

# How far (in tenths) a large room's count moves before it is announced again.
_RECOUNT_TENTHS = 1


def _fit(reply: Joined, max_frame: int) -> Joined:
    # Drop the oldest history, then the last members of the page, until the
    # reply fits in one frame; cut history means older messages exist.
    while reply.history and len(encode(reply)) > max_frame:
        reply = reply.model_copy(
            update={"history": reply.history[len(reply.history) // 2 + 1 :], "more": True}
        )
    while len(reply.members) > 1 and len(encode(reply)) > max_frame:
        reply = reply.model_copy(update={"members": reply.members[: len(reply.members) // 2]})
    return reply


def fold(nick: str) -> str:
    """The key under which nicks are unique: ASCII case folded."""
    return nick.lower()


class Room:
    """A room's members (by folded nick, also in order), topic and latest messages."""

    __slots__ = (
        "_boxes",
        "announced",
        "last",
        "members",
        "name",
        "older",
        "order",
        "recent",
        "topic",
    )

    def __init__(
        self,
        name: str,
        topic: str,
        recent: deque[RoomMessage],
        *,
        older: bool = False,
        last: int = 0,
    ) -> None:
        self.name = name
        self.topic = topic
        self.recent = recent
        self.older = older  # whether messages older than `recent` are stored
        self.members: dict[str, Session] = {}
        self.order: SortedList[str] = SortedList()
        self._boxes: list[Outbox] | None = []
        self.announced = 0  # the count last announced while large; 0 while small
        self.last = last  # in a cluster: the id of the last stream entry applied

    @property
    def boxes(self) -> list[Outbox]:
        """The members' outboxes, rebuilt after a change only when next needed:
        joins to a large room, which broadcast nothing, cost no O(n) rebuild."""
        if self._boxes is None:
            self._boxes = [s.box for s in self.members.values()]
        return self._boxes

    def add(self, key: str, session: Session) -> None:
        if key not in self.members:
            self.order.add(key)
        self.members[key] = session
        self._boxes = None

    def discard(self, key: str) -> None:
        if self.members.pop(key, None) is not None:
            self.order.remove(key)
            self._boxes = None

    def page(self, after: str | None, limit: int) -> tuple[list[str], bool]:
        """Up to `limit` nicks whose folded form sorts after `after`, and whether
        more follow."""
        start = 0 if after is None else self.order.bisect_right(fold(after))
        keys = list(self.order.islice(start, start + limit))
        members = self.members
        return [members[k].nick or k for k in keys], start + len(keys) < len(self.order)

    def remember(self, message: RoomMessage) -> None:
        if len(self.recent) == self.recent.maxlen:
            self.older = True
        self.recent.append(message)


class Hub:
    def __init__(
        self,
        lock: threading.Lock,
        writer: Writer,
        rooms: dict[str, RoomRecord],
        history: int,
        *,
        large_room: int = 250,
    ) -> None:
        self.lock = lock
        self.writer = writer
        self.sessions: set[Session] = set()
        self._nicks: dict[str, Session] = {}
        self._tokens: dict[str, Session] = {}  # resume tokens of live sessions
        self._per_address: dict[str, int] = {}
        self._history = history
        self.large_room = large_room
        self.rooms: dict[str, Room] = {
            name: Room(name, rec.topic, deque(rec.recent, maxlen=history), older=rec.older)
            for name, rec in rooms.items()
        }
        self._populated: SortedSet[str] = SortedSet()  # rooms with members, by name
        self._dm_ids = 0
        self.dm_keys: RecentKeys[DirectMessage] = RecentKeys()

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

    def issue_token(self, session: Session) -> str:
        """A fresh resume token for `session`'s welcome (PROTOCOL.md 1.3)."""
        token = secrets.token_urlsafe(24)
        with self.lock:
            if session.resume_token is not None:
                self._tokens.pop(session.resume_token, None)
            self._tokens[token] = session
            session.resume_token = token
        return token

    def resume(self, session: Session, nick: str, token: str) -> Session | None:
        """Let `session` take over the live session `token` names, if it has `nick`:
        its nick and rooms pass on silently and it gets the fatal `replaced`.
        Returns that old session (its reader is still to be woken), or None."""
        with self.lock:
            ghost = self._tokens.get(token)
            if (
                ghost is None
                or ghost is session
                or ghost.nick is None
                or fold(ghost.nick) != fold(nick)
                or ghost.end_reason is not None
                or ghost.box.dropped
                or self._nicks.get(fold(nick)) is not ghost
            ):
                return None
            del self._tokens[token]
            ghost.resume_token = None
            key = fold(nick)
            self._nicks[key] = session
            session.nick = ghost.nick
            session.rooms, ghost.rooms = ghost.rooms, set()
            for name in session.rooms:
                self.rooms[name].add(key, session)
            ghost.end(LeaveReason.KICKED, ErrorCode.REPLACED.value)
            self._send(
                ghost,
                Error(
                    code=ErrorCode.REPLACED.value,
                    message="another connection resumed this session",
                    fatal=True,
                ),
            )
        self.writer.wake()
        return ghost

    def remove(self, session: Session, reason: LeaveReason, *, tell: bool = True) -> None:
        """Forget a connection that has ended and tell its rooms why."""
        with self.lock:
            self._unregister(session)
            for name in session.rooms:
                self._depart(self.rooms[name], session, reason if tell else None)
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
        if session.resume_token is not None:
            self._tokens.pop(session.resume_token, None)
            session.resume_token = None

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
            room.discard(fold(old))
            room.add(fold(new), session)
        return rooms

    def _leave(self, room: Room, session: Session) -> None:
        if session.nick is not None:
            room.discard(fold(session.nick))
            if not room.members:
                self._populated.discard(room.name)

    def _arrive(self, room: Room, session: Session, *, tell: bool = True) -> None:
        """Add `session` to `room`; the others hear of it as the room's size says."""
        assert session.nick is not None
        if tell and len(room.members) < self.large_room and room.members:
            self._broadcast(room.boxes, MemberJoined(room=room.name, nick=session.nick))
        room.add(fold(session.nick), session)
        self._populated.add(room.name)
        if tell:
            self._recount(room, skip=session)

    def _depart(self, room: Room, session: Session, reason: LeaveReason | None) -> None:
        """Take `session` out of `room`; with a reason, the others hear of it as the
        room's size says."""
        large = len(room.members) > self.large_room
        self._leave(room, session)
        if reason is None or not room.members:
            return
        if large:
            self._recount(room)
        else:
            self._broadcast(
                room.boxes, MemberLeft(room=room.name, nick=session.nick or "", reason=reason)
            )

    def _recount(self, room: Room, skip: Session | None = None) -> None:
        """Announce a large room's count when it moved by a tenth since the last one
        announced, and the count of a room that became large or small."""
        count = len(room.members)
        large = count > self.large_room
        if large:
            moved = abs(count - room.announced) * 10 >= room.announced * _RECOUNT_TENTHS
            if room.announced and not moved:
                return
        elif not room.announced:
            return
        room.announced = count if large else 0
        self._broadcast(room.boxes, MemberCount(room=room.name, count=count), skip=skip)

    def _joined(self, room: Room, ref: RequestId | None, max_frame: int) -> Joined:
        """The `joined` reply: the first page of members, the count, the history."""
        members, _ = room.page(None, self.large_room)
        reply = Joined.model_construct(
            ref=ref,
            room=room.name,
            topic=room.topic,
            members=members,
            history=list(room.recent),
            count=len(room.members),
            more=room.older,
        )
        return _fit(reply, max_frame)

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
            if fold(session.nick) not in room.members:
                if len(room.members) >= max_members:
                    return False
                self._arrive(room, session)
                session.rooms.add(name)
            self._send(session, self._joined(room, ref, max_frame))
        self.writer.wake()
        return True

    def part(self, session: Session, name: str) -> bool:
        """Take `session` out of room `name`; False if it was not in it."""
        assert session.nick is not None
        with self.lock:
            room = self.rooms.get(name)
            if room is None or name not in session.rooms:
                return False
            self._depart(room, session, LeaveReason.PART)
            session.rooms.discard(name)
        self.writer.wake()
        return True

    def rename(self, session: Session, new: str, ref: RequestId | None) -> bool:
        """Change `session`'s nick and tell everyone who shares a room that is not
        large; False if taken."""
        old = session.nick
        assert old is not None
        with self.lock:
            holder = self._nicks.get(fold(new))
            if holder is not None and holder is not session:
                return False
            audience: dict[int, Outbox] = {}
            for room in self._take_nick(session, new):
                if len(room.members) <= self.large_room:
                    for box in room.boxes:
                        audience[id(box)] = box
            event = Renamed(old=old, new=new)
            self._broadcast(audience.values(), event, skip=session)
            self._send(session, event.model_copy(update={"ref": ref}))
        self.writer.wake()
        return True

    def direct(
        self,
        session: Session,
        to: str,
        text: str,
        *,
        ts: int,
        ref: RequestId | None,
        key: str | None = None,
    ) -> bool:
        """Deliver a direct message; False if nobody has nick `to`. A `key` this
        nick sent lately gets the original echo, and nobody else anything."""
        assert session.nick is not None
        with self.lock:
            if key is not None:
                sent = self.dm_keys.get(fold(session.nick), key)
                if sent is not None:
                    self._send(session, sent.model_copy(update={"ref": ref}))
                    return True
            target = self._nicks.get(fold(to))
            if target is None:
                return False
            self._dm_ids += 1
            event = DirectMessage(
                id=self._dm_ids, nick=session.nick, to=target.nick or to, text=text, ts=ts
            )
            if key is not None:
                self.dm_keys.put(fold(session.nick), key, event, len(text) * 4)
            if target is not session:
                self._send(target, event)
            self._send(session, event.model_copy(update={"ref": ref}))
        self.writer.wake()
        return True

    def room_list(self, after: str | None, limit: int) -> tuple[list[RoomInfo], bool]:
        """Up to `limit` rooms with members whose names sort after `after`, in name
        order, and whether more follow."""
        with self.lock:
            names = self._populated.irange(minimum=after, inclusive=(False, True))
            rows: list[RoomInfo] = []
            for name in names:
                if len(rows) == limit:
                    return rows, True
                room = self.rooms[name]
                rows.append(
                    RoomInfo.model_construct(room=name, members=len(room.members), topic=room.topic)
                )
            return rows, False

    def members(
        self, name: str, after: str | None = None, limit: int = MAX_LIST_PAGE
    ) -> tuple[list[str], int, bool] | None:
        """A page of `name`'s members in folded-nick order, their count and whether
        more follow; None if the room never existed."""
        with self.lock:
            room = self.rooms.get(name)
            if room is None:
                return None
            page, more = room.page(after, limit)
            return page, len(room.members), more

    def exists(self, name: str) -> bool:
        with self.lock:
            return name in self.rooms

    # -- the sequencer's fan-out, under the lock ------------------------------

    def publish(self, message: RoomMessage, sender: Session | None, ref: RequestId | None) -> None:
        """Queue a stored message for every member; calls fix the order everyone sees.

        The sender (None: not connected here) gets its echo with `ref`."""
        room = self.rooms[message.room]
        room.remember(message)
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

    def follow(
        self, name: str, topic: str, recent: list[RoomMessage], last: int, *, older: bool
    ) -> None:
        """Start following a room from stream entry `last`, unless it is followed already."""
        with self.lock:
            if name not in self.rooms:
                deq = deque(recent, maxlen=self._history)
                room = Room(name, topic, deq, older=older, last=last)
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
            room.add(fold(session.nick), session)
            self._populated.add(name)
            session.rooms.add(name)
            first = sorted(members, key=fold)[: self.large_room]
            reply = Joined.model_construct(
                ref=ref,
                room=name,
                topic=topic,
                members=first,
                history=list(room.recent),
                count=len(members),
                more=room.older,
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
