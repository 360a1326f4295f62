"""Missing nothing across reconnections (PROTOCOL.md sections 12 and 13).

Message ids strictly increase within a room, and each member receives a
room's messages in id order, so one number per room (the highest id seen) is
both the point to resume from and a complete duplicate filter, as long as
the server keeps its stored state: a `welcome` with another `epoch` says it
did not, and every number kept is forgotten.

`Resumer` is what carries over from one connection to the next: the nick
and its password, the rooms, the resume token, the epoch and the ids seen.
It does no I/O: it is handed a function that sends a command and returns
its reply.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from chatclient.errors import ChatError
from chatproto import (
    MAX_HISTORY_PAGE,
    Command,
    Event,
    Hello,
    History,
    HistoryPage,
    Join,
    Joined,
    Nick,
    Ok,
    Part,
    Register,
    Renamed,
    RoomMessage,
    Welcome,
)

__all__ = ["Exchange", "Rejoin", "Resumer", "Tracker", "missed"]

log = logging.getLogger("chatclient")

#: Sends a command on the new connection and returns its reply; raises `ChatError` if refused.
Exchange = Callable[[Command], Event]


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

    def track(self, room: str) -> None:
        """Track `room` from nothing seen, unless it is tracked already."""
        with self._lock:
            self._seen.setdefault(room, 0)

    def clear(self) -> None:
        """Forget every id: they may mean other messages now."""
        with self._lock:
            self._seen.clear()

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


@dataclass(frozen=True, slots=True)
class Rejoin:
    """What rejoining gave: the rooms back, those that refused, and what was missed."""

    joined: tuple[Joined, ...]
    refused: tuple[tuple[str, ChatError], ...]
    recovered: tuple[RoomMessage, ...]
    epoch_changed: bool = False


@dataclass(slots=True)
class _Carried:
    hello: Hello
    rooms: set[str] = field(default_factory=set)
    token: str | None = None
    epoch: str | None = None
    epoch_changed: bool = False


class Resumer:
    """Carries a client's session over reconnections. Thread-safe.

    `learn` is fed every successful request and its reply (rooms joined and
    left, nick and password changes, own messages); `fresh` filters incoming
    room messages; `hello`, `welcomed` and `rejoin` drive a new connection.
    """

    def __init__(self, hello: Hello) -> None:
        self.tracker = Tracker()
        self._lock = threading.Lock()
        self._state = _Carried(hello)

    @property
    def nick(self) -> str:
        with self._lock:
            return self._state.hello.nick

    @property
    def rooms(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._state.rooms)

    def hello(self) -> Hello:
        """The `hello` for the next connection: the current nick and password, and the
        resume token of the last `welcome`, which lets the server hand over at once the
        session it may still hold for this client (PROTOCOL.md section 13)."""
        with self._lock:
            return self._state.hello.model_copy(update={"resume": self._state.token})

    def welcomed(self, welcome: Welcome) -> bool:
        """Take in a new connection's `welcome`; True if the server's stored state changed
        generation, in which case every id kept has been forgotten."""
        with self._lock:
            state = self._state
            previous, state.epoch = state.epoch, welcome.epoch or state.epoch
            state.token = welcome.resume
            state.hello = state.hello.model_copy(update={"nick": welcome.nick})
            changed = previous is not None and welcome.epoch is not None
            changed = changed and welcome.epoch != previous
            state.epoch_changed = changed
        if changed:
            self.tracker.clear()
        return changed

    def learn(self, command: Command, reply: Event) -> None:
        """Learn from a successful reply (rooms, nick, password, last ids seen)."""
        if isinstance(reply, Joined):
            self.tracker.joined(reply)
            with self._lock:
                self._state.rooms.add(reply.room)
        elif isinstance(reply, Ok) and isinstance(command, Part):
            self.tracker.forget(command.room)
            with self._lock:
                self._state.rooms.discard(command.room)
        elif isinstance(reply, Ok) and isinstance(command, Register):
            self._set(password=command.password)  # reconnections must now prove the nick
        elif isinstance(reply, RoomMessage):
            self.tracker.fresh(reply)
        elif isinstance(reply, Renamed):
            with self._lock:
                update: dict[str, str | None] = {"nick": reply.new}
                if isinstance(command, Nick) and reply.old.lower() != reply.new.lower():
                    # Another nick: its password (or none) is the one to reconnect with.
                    update["password"] = command.password
                self._state.hello = self._state.hello.model_copy(update=update)

    def _set(self, **update: str | None) -> None:
        with self._lock:
            self._state.hello = self._state.hello.model_copy(update=update)

    def fresh(self, message: RoomMessage) -> bool:
        """Whether an incoming room message is new (and, if so, now seen)."""
        return self.tracker.fresh(message)

    def rejoin(self, exchange: Exchange) -> Rejoin:
        """Join every room again, each on its own, and fetch what each missed.

        A room that refuses (`room_full`, `too_many_rooms`, ...) is left out
        of the rooms kept and reported in `refused`; the others carry on. A
        fatal error, or the connection failing, raises. After an epoch change
        there is no position to resume from: what each room's `joined`
        replays is what was missed.
        """

        def fetch(command: History) -> HistoryPage:
            page = exchange(command)
            assert isinstance(page, HistoryPage)  # ClientConnection checks the reply's type
            return page

        with self._lock:
            rooms = sorted(self._state.rooms)
            reset = self._state.epoch_changed
        joined: list[Joined] = []
        refused: list[tuple[str, ChatError]] = []
        recovered: list[RoomMessage] = []
        for room in rooms:
            seen = self.tracker.resume_point(room)
            try:
                reply = exchange(Join(room=room))
            except ChatError as exc:
                if exc.fatal:
                    raise
                refused.append((room, exc))
                self.tracker.forget(room)
                with self._lock:
                    self._state.rooms.discard(room)
                continue
            assert isinstance(reply, Joined)
            joined.append(reply)
            if reset:
                self.tracker.track(room)
                recovered.extend(reply.history)
                continue
            try:
                recovered.extend(missed(room, seen, reply, fetch))
            except ChatError as exc:
                if exc.fatal:
                    raise
                log.warning("cannot fetch what #%s missed: %s", room, exc)
                recovered.extend(m for m in reply.history if m.id > seen)
        return Rejoin(tuple(joined), tuple(refused), tuple(recovered), reset)
