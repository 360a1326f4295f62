"""What a typed line means. Pure: no I/O, so every rule is easy to test."""

from __future__ import annotations

from dataclasses import dataclass, field

from chatproto import MAX_HISTORY_PAGE

__all__ = [
    "CLEAR_TOPIC",
    "HELP",
    "Action",
    "ChangeNick",
    "Help",
    "Invalid",
    "JoinRoom",
    "ListRooms",
    "PartRoom",
    "PrivateMessage",
    "Quit",
    "Reconnect",
    "RegisterNick",
    "SayText",
    "ShowHistory",
    "Switch",
    "Topic",
    "Who",
    "is_secret",
    "parse_line",
]

DEFAULT_HISTORY = 20

# The values that clear the topic: people type an empty pair of quotes, as in a shell.
CLEAR_TOPIC = ("--clear", "''", '""')

HELP = (
    "text                  send text to the current room",
    "/say TEXT             send TEXT as it is: the word exit, or a line starting with /",
    "                      (//text sends '/text' too)",
    "/join ROOM            join ROOM and make it current",
    "/part [ROOM]          leave ROOM (default: the current room)",
    "/msg NICK TEXT        send a direct message",
    "/nick NEW             change your nick (a registered nick's password is asked for)",
    "/register PASSWORD    register your nick: from then on it needs PASSWORD (8+ characters)",
    "/who [ROOM]           the members of ROOM (default: current); their count in a large room",
    "/rooms                list the rooms that have members",
    "/topic [TEXT]         show, or set, the current room's topic; /topic --clear clears it",
    f"/history [N]          show the last N messages (default {DEFAULT_HISTORY}, "
    f"at most {MAX_HISTORY_PAGE})",
    "/switch ROOM          make a joined ROOM current",
    "/reconnect            reconnect now, without waiting (Enter on an empty line too)",
    "/quit, exit           leave",
    "/help                 this list",
)


@dataclass(frozen=True, slots=True)
class SayText:
    text: str


@dataclass(frozen=True, slots=True)
class JoinRoom:
    room: str


@dataclass(frozen=True, slots=True)
class PartRoom:
    room: str | None


@dataclass(frozen=True, slots=True)
class PrivateMessage:
    nick: str
    text: str


@dataclass(frozen=True, slots=True)
class ChangeNick:
    nick: str


@dataclass(frozen=True, slots=True)
class RegisterNick:
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Who:
    room: str | None


@dataclass(frozen=True, slots=True)
class ListRooms:
    pass


@dataclass(frozen=True, slots=True)
class Topic:
    text: str | None


@dataclass(frozen=True, slots=True)
class ShowHistory:
    count: int


@dataclass(frozen=True, slots=True)
class Switch:
    room: str


@dataclass(frozen=True, slots=True)
class Quit:
    pass


@dataclass(frozen=True, slots=True)
class Reconnect:
    pass


@dataclass(frozen=True, slots=True)
class Help:
    pass


@dataclass(frozen=True, slots=True)
class Invalid:
    """A line that means nothing; `message` says why, in one line."""

    message: str


Action = (
    SayText
    | JoinRoom
    | PartRoom
    | PrivateMessage
    | ChangeNick
    | RegisterNick
    | Who
    | ListRooms
    | Topic
    | ShowHistory
    | Switch
    | Quit
    | Reconnect
    | Help
    | Invalid
)


def _room(word: str) -> str:
    # PROTOCOL.md: clients that take room names from people lower-case them.
    return word.lstrip("#").lower()


def parse_line(line: str) -> Action | None:
    """The action a typed line asks for; None for a blank line.

    Arguments that name one thing (a room, a nick) are the rest of the line,
    spaces included, so that a mistyped name is refused as a whole, never
    cut at its first space.
    """
    line = line.rstrip("\r\n")
    if not line.strip():
        return None
    if line.strip() == "exit":
        return Quit()
    if not line.startswith("/"):
        return SayText(line)
    if line.startswith("//"):
        return SayText(line[1:])
    name, _, rest = line[1:].partition(" ")
    name = name.lower()
    rest = rest.strip()
    words = rest.split()
    if name in ("quit", "exit", "q"):
        return Quit()
    if name in ("help", "?"):
        return Help()
    if name == "rooms":
        return ListRooms()
    if name == "reconnect":
        return Reconnect()
    if name == "say":
        # Only the one space after the command goes: the text is kept as typed.
        text = line[1:].partition(" ")[2]
        return SayText(text) if text.strip() else Invalid("usage: /say TEXT")
    if name in ("join", "j"):
        return JoinRoom(_room(rest)) if rest else Invalid("usage: /join ROOM")
    if name in ("switch", "s"):
        return Switch(_room(rest)) if rest else Invalid("usage: /switch ROOM")
    if name in ("part", "leave"):
        return PartRoom(_room(rest) if rest else None)
    if name in ("who", "members", "names"):
        return Who(_room(rest) if rest else None)
    if name in ("msg", "dm"):
        nick, _, text = rest.partition(" ")
        if not nick or not text.strip():
            return Invalid("usage: /msg NICK TEXT")
        return PrivateMessage(nick, text.strip())
    if name == "nick":
        return ChangeNick(rest) if rest else Invalid("usage: /nick NEW")
    if name == "register":
        return RegisterNick(rest) if rest else Invalid("usage: /register PASSWORD")
    if name == "topic":
        return Topic(rest or None)
    if name == "history":
        if not words:
            return ShowHistory(DEFAULT_HISTORY)
        if len(words) == 1 and words[0].isdigit() and 1 <= int(words[0]) <= MAX_HISTORY_PAGE:
            return ShowHistory(int(words[0]))
        return Invalid(f"usage: /history [N], N from 1 to {MAX_HISTORY_PAGE}")
    return Invalid(f"unknown command /{name}; /help lists the commands")


def is_secret(line: str) -> bool:
    """Whether a typed line holds a password, and so must not be kept in the line history."""
    name = line.strip().partition(" ")[0].lower()
    return name == "/register"
