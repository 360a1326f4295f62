"""How events look on screen. Pure functions: event in, styled lines out.

A line is a tuple of (style, text) fragments, so one rendering serves the
colour terminal (`to_ansi`), pipes (`to_plain`) and tests. Times are given,
never read here, so the output is predictable.
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Sequence

from chatclient.events import (
    ClientEvent,
    Disconnected,
    EventsDropped,
    Reconnected,
    Reconnecting,
    RejoinFailed,
)
from chatproto import (
    Command,
    DirectMessage,
    Error,
    Event,
    HistoryPage,
    Joined,
    LeaveReason,
    MemberCount,
    MemberJoined,
    MemberLeft,
    MemberList,
    Ok,
    Part,
    PongReply,
    Register,
    Renamed,
    RoomList,
    RoomMessage,
    TopicChanged,
    Welcome,
    encode,
)

__all__ = [
    "Fragment",
    "Line",
    "clean",
    "clock",
    "error_line",
    "event_lines",
    "message_lines",
    "nick_style",
    "note_line",
    "render",
    "reply_lines",
    "to_ansi",
    "to_json",
    "to_plain",
]

Fragment = tuple[str, str]
Line = tuple[Fragment, ...]

# 256-colour codes that read well on dark and light backgrounds.
NICK_COLOURS = (39, 208, 70, 170, 214, 33, 160, 37, 135, 142, 203, 75)
_ANSI = {
    "time": "\x1b[2m",
    "room": "\x1b[36m",
    "system": "\x1b[33m",
    "dm": "\x1b[1;35m",
    "error": "\x1b[1;31m",
}
_RESET = "\x1b[0m"
# Everything but TAB and LF that could move the cursor or recolour the terminal.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_LEFT = {
    LeaveReason.PART: "left",
    LeaveReason.QUIT: "quit",
    LeaveReason.TIMEOUT: "timed out",
    LeaveReason.LOST: "lost the connection",
    LeaveReason.KICKED: "was disconnected by the server",
}


def clean(text: str) -> str:
    """`text` safe to print: control characters (the protocol forbids them anyway) shown as �."""
    return _CONTROLS.sub("\ufffd", text)


def clock(ts_ms: int | None, now: float) -> str:
    """HH:MM, local time, of a server timestamp (ms), or of `now` (s) when there is none."""
    return time.strftime("%H:%M", time.localtime(ts_ms / 1000 if ts_ms is not None else now))


def nick_style(nick: str) -> str:
    """The same colour for a nick every time, in every client (case-insensitively)."""
    return f"nick.{NICK_COLOURS[zlib.crc32(nick.lower().encode()) % len(NICK_COLOURS)]}"


def _head(stamp: str, room: str | None) -> list[Fragment]:
    head: list[Fragment] = [("time", stamp), ("", " ")]
    if room is not None:
        head += [("room", f"#{room}"), ("", " ")]
    return head


def _body(head: list[Fragment], text: str, style: str) -> list[Line]:
    # Further lines of a multi-line text are indented under the first.
    first, *rest = clean(text).split("\n")
    indent = " " * sum(len(t) for _, t in head)
    return [(*head, (style, first)), *((("", indent), (style, more)) for more in rest)]


def message_lines(message: RoomMessage) -> list[Line]:
    head = _head(clock(message.ts, 0), message.room)
    head += [(nick_style(message.nick), f"<{message.nick}>"), ("", " ")]
    return _body(head, message.text, "")


def _dm_lines(message: DirectMessage) -> list[Line]:
    head = _head(clock(message.ts, 0), None)
    head += [
        ("dm", "[dm] "),
        (nick_style(message.nick), message.nick),
        ("dm", " -> "),
        (nick_style(message.to), message.to),
        ("", " "),
    ]
    return _body(head, message.text, "dm")


def note_line(text: str, now: float, room: str | None = None) -> Line:
    """A system line: something that happened, not something someone said."""
    return (*_head(clock(None, now), room), ("system", f"* {clean(text)}"))


def error_line(text: str, now: float) -> Line:
    return (*_head(clock(None, now), None), ("error", f"! {clean(text)}"))


def _joined_lines(reply: Joined, now: float, backlog: bool) -> list[Line]:
    count = len(reply.members) if reply.count is None else reply.count
    if count == len(reply.members):
        text = f"you joined #{reply.room}; {count} here: {', '.join(reply.members)}"
    else:
        # A large room sends the first page of its members only (PROTOCOL.md 1.3).
        text = f"you joined #{reply.room}; {count} here (/who lists them)"
    if reply.topic:
        text += f"; topic: {reply.topic}"
    lines = [note_line(text, now, reply.room)]
    if backlog:
        lines += [line for message in reply.history for line in message_lines(message)]
    return lines


def _members_text(reply: MemberList) -> str:
    names = ", ".join(reply.members)
    count = len(reply.members) if reply.count is None else reply.count
    if count == len(reply.members) and not reply.more:
        return f"{_count(count, 'member')}: {names}"
    return f"{_count(count, 'member')}; the first {len(reply.members)}: {names}"


def _topic_text(event: TopicChanged) -> str:
    if event.topic:
        return f"{event.nick} set the topic: {event.topic}"
    return f"{event.nick} cleared the topic"


def event_lines(event: ClientEvent, now: float, *, backlog: bool = True) -> list[Line]:
    """What an event (not a reply) looks like; [] for events not worth a line.

    Without `backlog`, what a script does not want is left out: the MOTD.
    """
    match event:
        case RoomMessage():
            return message_lines(event)
        case DirectMessage():
            return _dm_lines(event)
        case MemberJoined():
            return [note_line(f"{event.nick} joined", now, event.room)]
        case MemberLeft():
            return [note_line(f"{event.nick} {_LEFT[event.reason]}", now, event.room)]
        case MemberCount():
            return [note_line(f"{_count(event.count, 'member')} now", now, event.room)]
        case Renamed():
            return [note_line(f"{event.old} is now {event.new}", now)]
        case TopicChanged():
            return [note_line(_topic_text(event), now, event.room)]
        case Error():
            return [error_line(f"{event.code}: {event.message}", now)]
        case Welcome():
            lines = [note_line(f"connected to {event.server} as {event.nick}", now)]
            if event.motd and backlog:
                lines.append(note_line(event.motd, now))
            return lines
        case Disconnected():
            more = "; reconnecting" if event.reconnecting else ""
            return [error_line(f"connection lost ({event.reason}){more}", now)]
        case Reconnecting():
            if event.error is None:
                return []
            return [
                note_line(
                    f"reconnect attempt {event.attempt - 1} failed ({event.error}); "
                    f"next in {event.delay:.1f} s",
                    now,
                )
            ]
        case Reconnected():
            lost = "; the server lost its stored messages" if event.epoch_changed else ""
            return [
                note_line(
                    f"reconnected as {event.welcome.nick}; "
                    f"{_count(event.recovered, 'missed message')}{lost}",
                    now,
                )
            ]
        case RejoinFailed():
            return [error_line(f"could not rejoin #{event.room}: {event.code}", now)]
        case EventsDropped():
            return [error_line(f"{event.count} events were dropped", now)]
    return []


def reply_lines(command: Command, reply: Event, now: float, *, backlog: bool = True) -> list[Line]:
    """What the successful reply to `command` looks like; without `backlog`, a join
    shows no history."""
    match reply:
        case Joined():
            return _joined_lines(reply, now, backlog)
        case Ok() if isinstance(command, Part):
            return [note_line(f"you left #{command.room}", now, command.room)]
        case Ok() if isinstance(command, Register):
            text = "your nick is registered: from now on it needs this password"
            return [note_line(text, now)]
        case Renamed():
            return [note_line(f"you are now {reply.new}", now)]
        case RoomList():
            if not reply.rooms:
                return [note_line("no rooms have members", now)]
            rows = [
                f"#{r.room} ({r.members})" + (f" {r.topic}" if r.topic else "") for r in reply.rooms
            ]
            return [note_line(f"{_count(len(rows), 'room')}: " + ", ".join(rows), now)]
        case MemberList():
            return [note_line(_members_text(reply), now, reply.room)]
        case HistoryPage():
            if not reply.messages:
                return [note_line("no messages", now, reply.room)]
            count = _count(len(reply.messages), "message")
            lines = [note_line(f"last {count}:", now, reply.room)]
            lines += [line for message in reply.messages for line in message_lines(message)]
            return lines
        case PongReply():
            return [note_line("pong", now)]
        case Ok():
            return []
    return event_lines(reply, now)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def to_plain(line: Line) -> str:
    return "".join(text for _, text in line)


def to_ansi(line: Line) -> str:
    parts: list[str] = []
    for style, text in line:
        code = _ansi_code(style)
        parts.append(f"{code}{text}{_RESET}" if code else text)
    return "".join(parts)


def _ansi_code(style: str) -> str:
    if style.startswith("nick."):
        return f"\x1b[1;38;5;{style.removeprefix('nick.')}m"
    return _ANSI.get(style, "")


def to_json(event: Event) -> str:
    """The frame as the protocol writes it, without its line feed."""
    return encode(event).decode().rstrip("\n")


def render(lines: Sequence[Line], *, ansi: bool) -> list[str]:
    return [to_ansi(line) if ansi else to_plain(line) for line in lines]
