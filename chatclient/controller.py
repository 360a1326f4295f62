"""The terminal client's logic, shared by the interactive and the piped mode.

A typed line becomes a command sent without waiting (`Client.submit`); its
reply is shown by a callback in the receive thread, in order with the
events. The current room changes as soon as a line asks for it, so that
piped lines that follow a `/join` go to the new room, as the server, which
handles one client's commands in order, will see them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures

from chatclient.client import Client
from chatclient.commands import (
    HELP,
    Action,
    ChangeNick,
    Help,
    Invalid,
    JoinRoom,
    ListRooms,
    PartRoom,
    PrivateMessage,
    Quit,
    RegisterNick,
    SayText,
    ShowHistory,
    Switch,
    Topic,
    Who,
    parse_line,
)
from chatclient.errors import ClientError
from chatclient.events import ClientEvent, Reconnected
from chatclient.output import Output
from chatproto import (
    MAX_TEXT,
    Command,
    Dm,
    Event,
    History,
    Join,
    Joined,
    Members,
    Nick,
    Part,
    Register,
    Rooms,
    Say,
    SetTopic,
    TopicChanged,
    Welcome,
)

__all__ = ["Controller"]

_ROOM = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_NICK = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,23}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def problem(action: Action) -> str | None:
    """Why the server would refuse `action`, in words people understand; None if fine."""
    room = getattr(action, "room", None)
    if room is not None and not _ROOM.match(room):
        return (
            f"invalid room name {room!r}: 1-32 lower-case letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    nick = getattr(action, "nick", None)
    if nick is not None and not _NICK.match(nick):
        return (
            f"invalid nick {nick!r}: 1-24 letters, digits, '_' or '-', "
            "starting with a letter or '_'"
        )
    if isinstance(action, RegisterNick) and not 8 <= len(action.password) <= 256:
        return "a password must have 8 to 256 characters"
    if isinstance(action, ChangeNick) and action.password and len(action.password) > 256:
        return "a password must have at most 256 characters"
    text = getattr(action, "text", None)
    if text is not None:
        if len(text) > MAX_TEXT:
            return f"the text is too long: at most {MAX_TEXT} characters"
        if _CONTROL.search(text):
            return "the text contains control characters"
    return None


class Controller:
    """Turns lines into commands for `client` and shows results on `out`."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.client: Client | None = None
        self.current: str | None = None
        self.rooms: list[str] = []  # joined (or being joined), in joining order
        self.topics: dict[str, str] = {}
        self.failures = 0
        self._lock = threading.Lock()
        self._futures: set[Future[Event]] = set()

    @property
    def prompt(self) -> str:
        return f"[{self.current or '-'}] > "

    def start(self, client: Client, welcome: Welcome, room: str | None) -> None:
        """Show the welcome and join the first room."""
        self.client = client
        self.out.event(welcome)
        if room:
            self.handle(f"/join {room}")

    def on_event(self, event: ClientEvent) -> None:
        """The client's callback: note topic changes, then show the event."""
        if isinstance(event, TopicChanged):
            self.topics[event.room] = event.topic
        elif isinstance(event, Reconnected):
            for joined in event.rooms:
                self.topics[joined.room] = joined.topic
        self.out.event(event)

    # -- lines -------------------------------------------------------------

    def handle(self, line: str) -> bool:
        """Carry out one typed line; False when it asks to quit."""
        action = parse_line(line)
        if action is None:
            return True
        if isinstance(action, Quit):
            return False
        why = problem(action)
        if why is not None:
            self.out.error(why)
            return True
        self._perform(action)
        return True

    def _perform(self, action: Action) -> None:
        current = self.current
        match action:
            case SayText(text):
                if current is None:
                    self.out.error("you are in no room: /join ROOM first")
                else:
                    self._send(Say(room=current, text=text))
            case JoinRoom(room):
                self._join(room)
            case PartRoom(room):
                self._part(room or current)
            case PrivateMessage(nick, text):
                self._send(Dm(to=nick, text=text))
            case ChangeNick(nick, password):
                self._send(Nick(nick=nick, password=password))
            case RegisterNick(password):
                self._send(Register(password=password))
            case Who(room):
                if room or current:
                    self._send(Members(room=room or current or ""))
                else:
                    self.out.error("which room? /who ROOM")
            case ListRooms():
                self._send(Rooms())
            case Topic(text):
                if current is None:
                    self.out.error("you are in no room: /join ROOM first")
                elif text is None:
                    topic = self.topics.get(current, "")
                    self.out.note(f"topic: {topic}" if topic else "no topic is set", current)
                else:
                    self._send(SetTopic(room=current, topic=text))
            case ShowHistory(count):
                if current is None:
                    self.out.error("you are in no room: /join ROOM first")
                else:
                    self._send(History(room=current, limit=count))
            case Switch(room):
                if room in self.rooms:
                    self.current = room
                    self.out.note(f"now talking in #{room}", room)
                else:
                    self.out.error(f"you are not in #{room}: /join {room} first")
            case Help():
                for text in HELP:
                    self.out.note(text)
            case Invalid(message):
                self.out.error(message)

    def _join(self, room: str) -> None:
        previous = self.current
        known = room in self.rooms
        if not known:
            self.rooms.append(room)
        self.current = room

        def joined(reply: Event) -> None:
            if isinstance(reply, Joined):
                self.topics[room] = reply.topic

        def refused() -> None:
            if not known and room in self.rooms:
                self.rooms.remove(room)
            if self.current == room:
                self.current = previous if previous in self.rooms else None

        self._send(Join(room=room), joined, refused)

    def _part(self, room: str | None) -> None:
        if room is None:
            self.out.error("you are in no room")
            return
        if room in self.rooms:
            self.rooms.remove(room)
        if self.current == room:
            self.current = self.rooms[-1] if self.rooms else None
            if self.current is not None:
                self.out.note(f"now talking in #{self.current}", self.current)
        self._send(Part(room=room))

    # -- sending -------------------------------------------------------------

    def _send(
        self,
        command: Command,
        on_reply: Callable[[Event], None] | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        assert self.client is not None, "start() first"

        def done(future: Future[Event]) -> None:
            with self._lock:
                self._futures.discard(future)
            error = future.exception()
            if error is None:
                reply = future.result()
                if on_reply is not None:
                    on_reply(reply)
                self.out.reply(command, reply)
                return
            with self._lock:
                self.failures += 1
            if on_failure is not None:
                on_failure()
            if isinstance(error, ClientError):
                self.out.failure(command, error)
            else:
                self.out.error(f"{command.type} failed: {error!r}")

        try:
            future = self.client.submit(command, done)
        except ClientError as exc:
            with self._lock:
                self.failures += 1
            if on_failure is not None:
                on_failure()
            self.out.failure(command, exc)
            return
        with self._lock:
            # `done` may have run already (the future is marked done before its
            # callbacks run, and they take this lock): then there is nothing to wait for.
            if not future.done():
                self._futures.add(future)

    def wait(self, timeout: float) -> bool:
        """Wait until every command sent has been answered; False on timeout."""
        with self._lock:
            futures = set(self._futures)
        _, not_done = wait_futures(futures, timeout)
        return not not_done
