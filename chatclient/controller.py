"""The terminal client's logic, shared by the interactive and the piped mode.

A typed line becomes a command sent without waiting (`Client.submit`); its
reply is shown by a callback in the receive thread, in order with the
events. The current room changes as soon as a line asks for it, so that
piped lines that follow a `/join` go to the new room, as the server, which
handles one client's commands in order, will see them.

Messages carry an idempotency key (PROTOCOL.md 1.3). One typed while the
connection is down, or whose answer the broken connection took with it, is
kept and sent again with the same key once the client has reconnected: the
server stores it once, whichever of the two sends reached it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import Future

from chatclient.client import Client, new_key
from chatclient.commands import (
    CLEAR_TOPIC,
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
    Reconnect,
    RegisterNick,
    SayText,
    ShowHistory,
    Switch,
    Topic,
    Who,
    parse_line,
)
from chatclient.errors import ChatError, ClientClosed, ClientError, ConnectionLost
from chatclient.events import ClientEvent, Disconnected, Reconnected
from chatclient.output import Output
from chatproto import (
    MAX_TEXT,
    Command,
    Dm,
    ErrorCode,
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
# Messages kept while the connection is down, at most; more are refused.
MAX_UNSENT = 100


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
    text = getattr(action, "text", None)
    if text is not None:
        if len(text) > MAX_TEXT:
            return f"the text is too long: at most {MAX_TEXT} characters"
        if _CONTROL.search(text):
            return "the text contains control characters"
    return None


class Controller:
    """Turns lines into commands for `client` and shows results on `out`.

    `interactive`: a person at a terminal, who can be asked for a password.
    `keep_unsent`: the client reconnects, so messages the connection lost are
    kept and sent again.
    """

    def __init__(
        self, out: Output, *, interactive: bool = False, keep_unsent: bool = False
    ) -> None:
        self.out = out
        self.interactive = interactive
        self.keep_unsent = keep_unsent
        self.client: Client | None = None
        self.current: str | None = None
        self.rooms: list[str] = []  # joined (or being joined), in joining order
        self.topics: dict[str, str] = {}
        self.failures = 0
        # The nick whose password the next line is (the prompt hides it), if any.
        self.password_for: str | None = None
        # Called when the prompt must change (the terminal redraws it).
        self.on_change: Callable[[], None] = lambda: None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._futures: set[Future[Event]] = set()
        self._unsent: list[Say | Dm] = []
        self._resending = 0  # taken from _unsent, not yet handed to the client

    @property
    def prompt(self) -> str:
        if self.password_for is not None:
            return f"password for {self.password_for} (not shown; empty to cancel): "
        return f"[{self.current or '-'}] > "

    def start(self, client: Client, welcome: Welcome, room: str | None) -> None:
        """Show the welcome and join the first room."""
        self.client = client
        self.out.event(welcome)
        if room:
            self.handle(f"/join {room}")

    def on_event(self, event: ClientEvent) -> None:
        """The client's callback: note what changes the state, show the event, then
        send what the broken connection kept back."""
        if isinstance(event, TopicChanged):
            self.topics[event.room] = event.topic
        elif isinstance(event, Reconnected):
            for joined in event.rooms:
                self._joined(joined)
        self.out.event(event)
        if isinstance(event, Reconnected):
            self._send_unsent()
        elif isinstance(event, Disconnected) and not event.reconnecting:
            self._drop_unsent()

    # -- lines -------------------------------------------------------------

    def handle(self, line: str) -> bool:
        """Carry out one typed line; False when it asks to quit."""
        if self.password_for is not None:
            nick, self.password_for = self.password_for, None
            self.on_change()
            password = line.rstrip("\r\n")
            if password:
                self._send(Nick(nick=nick, password=password))
            else:
                self.out.note(f"you are still {self._nick()}")
            return True
        action = parse_line(line)
        if action is None:
            client = self.client
            if client is not None and client.reconnect_now():
                self.out.note("reconnecting now")
            return True
        if isinstance(action, Quit):
            return False
        why = problem(action)
        if why is not None:
            self._refuse(why)
            return True
        self._perform(action)
        return True

    def _refuse(self, why: str) -> None:
        """A line the client itself refuses: it counts as a failure, like the server's."""
        with self._lock:
            self.failures += 1
        self.out.error(why)

    def _nick(self) -> str:
        return self.client.nickname if self.client is not None else "-"

    def _perform(self, action: Action) -> None:
        current = self.current
        match action:
            case SayText(text):
                if current is None:
                    self._refuse("you are in no room: /join ROOM first")
                else:
                    self._send(Say(room=current, text=text, key=new_key()))
            case JoinRoom(room):
                self._join(room)
            case PartRoom(room):
                self._part(room or current)
            case PrivateMessage(nick, text):
                self._send(Dm(to=nick, text=text, key=new_key()))
            case ChangeNick(nick):
                self._send(Nick(nick=nick))
            case RegisterNick(password):
                self._send(Register(password=password))
            case Who(room):
                if room or current:
                    self._send(Members(room=room or current or ""))
                else:
                    self._refuse("which room? /who ROOM")
            case ListRooms():
                self._send(Rooms())
            case Topic(text):
                self._topic(current, text)
            case ShowHistory(count):
                if current is None:
                    self._refuse("you are in no room: /join ROOM first")
                else:
                    self._send(History(room=current, limit=count))
            case Switch(room):
                if room in self.rooms:
                    self.current = room
                    self.out.note(f"now talking in #{room}", room)
                else:
                    self._refuse(f"you are not in #{room}: /join {room} first")
            case Reconnect():
                self._reconnect()
            case Help():
                for text in HELP:
                    self.out.note(text)
            case Invalid(message):
                self._refuse(message)

    def _topic(self, room: str | None, text: str | None) -> None:
        if room is None:
            self._refuse("you are in no room: /join ROOM first")
        elif text is None:
            topic = self.topics.get(room, "")
            self.out.note(f"topic: {topic}" if topic else "no topic is set", room)
        else:

            def changed(reply: Event) -> None:
                if isinstance(reply, TopicChanged):  # our own change: a reply, not an event
                    self.topics[reply.room] = reply.topic

            self._send(SetTopic(room=room, topic="" if text in CLEAR_TOPIC else text), changed)

    def _reconnect(self) -> None:
        client = self.client
        if client is None or client.connected:
            self.out.note("you are connected")
        elif client.reconnect_now():
            self.out.note("reconnecting now")
        else:
            self._refuse("the client does not reconnect (--no-reconnect)")

    def _joined(self, reply: Joined) -> None:
        self.topics[reply.room] = reply.topic

    def _join(self, room: str) -> None:
        previous = self.current
        known = room in self.rooms
        if not known:
            self.rooms.append(room)
        self.current = room

        def joined(reply: Event) -> None:
            if isinstance(reply, Joined):
                self._joined(reply)

        def refused() -> None:
            if not known and room in self.rooms:
                self.rooms.remove(room)
            if self.current == room:
                self.current = previous if previous in self.rooms else None

        self._send(Join(room=room), joined, refused)

    def _part(self, room: str | None) -> None:
        if room is None:
            self._refuse("you are in no room")
            return
        if room in self.rooms:
            self.rooms.remove(room)
        moved = self.current == room
        if moved:
            self.current = self.rooms[-1] if self.rooms else None
        now = self.current

        def left(reply: Event) -> None:
            # After "you left": the room talked in changed only if it was the one left.
            if moved and now is not None:
                self.out.note(f"now talking in #{now}", now)

        self._send(Part(room=room), left)

    # -- sending -------------------------------------------------------------

    def _send(
        self,
        command: Command,
        on_reply: Callable[[Event], None] | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        assert self.client is not None, "start() first"

        def done(future: Future[Event]) -> None:
            error = future.exception()
            if error is None:
                reply = future.result()
                self.out.reply(command, reply)
                if on_reply is not None:
                    on_reply(reply)
            elif not self._keep(command, error):
                self._failed(command, error, on_failure)
            with self._idle:
                self._futures.discard(future)
                self._idle.notify_all()

        try:
            future = self.client.submit(command, done)
        except ClientError as exc:
            if not self._keep(command, exc):
                self._failed(command, exc, on_failure)
            return
        with self._lock:
            # `done` may have run already (the future is marked done before its
            # callbacks run, and they take this lock): then there is nothing to wait for.
            if not future.done():
                self._futures.add(future)

    def _failed(
        self, command: Command, error: BaseException, on_failure: Callable[[], None] | None
    ) -> None:
        with self._lock:
            self.failures += 1
        if on_failure is not None:
            on_failure()
        if (
            self.interactive
            and isinstance(command, Nick)
            and command.password is None
            and isinstance(error, ChatError)
            and error.code == ErrorCode.AUTH_FAILED
        ):
            # A registered nick: ask for its password, hidden, as ssh does.
            self.password_for = command.nick
            self.out.note(f"{command.nick} is registered: type its password")
            self.on_change()
        elif isinstance(error, ClientError):
            self.out.failure(command, error)
        else:
            self.out.error(f"{command.type} failed: {error!r}")

    def _keep(self, command: Command, error: BaseException) -> bool:
        """Keep a message the connection lost, to send it again with its key; whether kept."""
        if not (self.keep_unsent and isinstance(command, Say | Dm)):
            return False
        if not isinstance(error, ConnectionLost) or isinstance(error, ClientClosed):
            return False
        client = self.client
        with self._lock:
            if len(self._unsent) >= MAX_UNSENT:
                return False
            self._unsent.append(command)
        if client is not None and client.connected:
            # It reconnected already, before this failure was seen.
            self._send_unsent()
        else:
            self.out.note("not connected: this will be sent when the connection is back")
        return True

    def _send_unsent(self) -> None:
        with self._lock:
            unsent, self._unsent = self._unsent, []
            self._resending += len(unsent)
        for command in unsent:
            self._send(command)
            with self._idle:
                self._resending -= 1
                self._idle.notify_all()

    def _drop_unsent(self) -> None:
        with self._idle:
            lost, self._unsent = self._unsent, []
            self.failures += len(lost)
            self._idle.notify_all()
        if lost:
            self.out.error(f"{len(lost)} unsent message(s) were lost with the connection")

    def wait(self, timeout: float) -> bool:
        """Wait until every command sent has been answered (kept ones too); False on timeout."""
        with self._idle:
            return self._idle.wait_for(
                lambda: not self._futures and not self._unsent and not self._resending, timeout
            )
