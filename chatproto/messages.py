"""The v1 message set, as pydantic models: one class per message type.

Commands travel from client to server, events from server to client. Each
direction is a discriminated union on the `type` field, so a frame is
validated in one pass straight from its JSON bytes. Models are frozen and
strict (no silent coercion of "5" into 5); fields a model does not know are
ignored, so a newer peer may add fields without breaking an older one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

__all__ = [
    "MAX_HISTORY_PAGE",
    "MAX_LIST_PAGE",
    "MAX_TEXT",
    "MAX_TOPIC",
    "PROTOCOL_VERSION",
    "Bye",
    "Command",
    "DirectMessage",
    "Dm",
    "Error",
    "Event",
    "History",
    "HistoryPage",
    "Join",
    "Joined",
    "LeaveReason",
    "Limits",
    "MemberCount",
    "MemberJoined",
    "MemberLeft",
    "MemberList",
    "Members",
    "MessageId",
    "Nick",
    "NickName",
    "Ok",
    "Part",
    "Ping",
    "Pong",
    "PongReply",
    "Register",
    "Renamed",
    "RequestId",
    "RoomInfo",
    "RoomList",
    "RoomMessage",
    "RoomName",
    "Rooms",
    "Say",
    "ServerPing",
    "SetTopic",
    "TopicChanged",
    "Welcome",
]

PROTOCOL_VERSION = "1.3"
MAX_TEXT = 4000
MAX_TOPIC = 300
MAX_HISTORY_PAGE = 100
MAX_LIST_PAGE = 1000
_MAX_SAFE_INT = 2**53 - 1

# Letters, digits, "_" and "-", starting with a letter or "_": ASCII only, so
# no two distinct nicks can look alike. Compared case-insensitively.
NickName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,23}$")]
# Lower-case ASCII only, so a room has exactly one spelling.
RoomName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
# Any characters but C0/C1 controls; TAB and LF are allowed.
Text = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=MAX_TEXT, pattern=r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]+$"
    ),
]
# No control, format (bidirectional overrides, zero-width characters), line or
# paragraph separator, or private-use characters: nothing invisible or
# direction-changing that could make one topic look like another.
Topic = Annotated[
    str,
    StringConstraints(max_length=MAX_TOPIC, pattern=r"^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}]*$"),
]
Password = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Token = Annotated[str, StringConstraints(max_length=64, pattern=r"^[^\x00-\x1f\x7f-\x9f]*$")]
Label = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")
]
RequestId = (
    Annotated[str, StringConstraints(min_length=1, max_length=64)]
    | Annotated[int, Field(ge=0, le=_MAX_SAFE_INT)]
)
MessageId = Annotated[int, Field(ge=1, le=_MAX_SAFE_INT)]
# A position in a room's history: 0 is "before the first message".
Position = Annotated[int, Field(ge=0, le=_MAX_SAFE_INT)]
# Chosen by the client for `say` and `dm`, so that a retry is never stored twice.
IdempotencyKey = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")
]
# Chosen by the server; secret; printable ASCII.
ResumeToken = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
]
Epoch = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
ListLimit = Annotated[int, Field(ge=1, le=MAX_LIST_PAGE)]
Timestamp = Annotated[int, Field(ge=0, le=_MAX_SAFE_INT)]
Version = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,4}\.[0-9]{1,4}$")]
HistoryLimit = Annotated[int, Field(ge=1, le=MAX_HISTORY_PAGE)]


def _null_means(default: object, schema: Any) -> BeforeValidator:
    """An explicit `null` is the field left out: its default (PROTOCOL.md section 2).

    `schema` is the field's type or `null`, for the JSON Schema."""
    return BeforeValidator(lambda v: default if v is None else v, json_schema_input_type=schema)


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")


class _Request(_Message):
    # Unknown fields are kept aside, not validated, so that the receiver can
    # tell cheaply whether a frame had any (their values must still be JSON:
    # PROTOCOL.md section 2). They mean nothing and are never sent on.
    model_config = ConfigDict(extra="allow")

    id: RequestId | None = None

    def __eq__(self, other: object) -> bool:
        # Equal when the fields this version defines are: unknown ones mean nothing.
        return type(other) is type(self) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash((type(self), *self.__dict__.values()))


class _Reply(_Message):
    ref: RequestId | None = None


# --- commands: client to server ---------------------------------------------


class Hello(_Request):
    """Opens the session; must be the first command and is sent only once."""

    type: Literal["hello"] = "hello"
    nick: NickName
    version: Annotated[Version, _null_means(PROTOCOL_VERSION, Version | None)] = PROTOCOL_VERSION
    client: Label | None = None
    password: Password | None = None
    server_password: Password | None = None
    resume: ResumeToken | None = None


class Join(_Request):
    """Enters a room, creating it if it does not exist."""

    type: Literal["join"] = "join"
    room: RoomName


class Part(_Request):
    """Leaves a room."""

    type: Literal["part"] = "part"
    room: RoomName


class Say(_Request):
    """Sends text to every member of a room the sender has joined."""

    type: Literal["say"] = "say"
    room: RoomName
    text: Text
    key: IdempotencyKey | None = None


class Dm(_Request):
    """Sends text to one connected nick."""

    type: Literal["dm"] = "dm"
    to: NickName
    text: Text
    key: IdempotencyKey | None = None


class Nick(_Request):
    """Changes the sender's nick; a registered nick needs its password."""

    type: Literal["nick"] = "nick"
    nick: NickName
    password: Password | None = None


class Register(_Request):
    """Registers the sender's current nick, so that only this password can use it."""

    type: Literal["register"] = "register"
    password: Annotated[str, StringConstraints(min_length=8, max_length=256)]


class Rooms(_Request):
    """Asks for the rooms that have members."""

    type: Literal["rooms"] = "rooms"
    after: RoomName | None = None
    limit: Annotated[ListLimit, _null_means(MAX_LIST_PAGE, ListLimit | None)] = MAX_LIST_PAGE


class Members(_Request):
    """Asks for the nicks in a room."""

    type: Literal["members"] = "members"
    room: RoomName
    after: NickName | None = None
    limit: Annotated[ListLimit, _null_means(MAX_LIST_PAGE, ListLimit | None)] = MAX_LIST_PAGE


class SetTopic(_Request):
    """Sets a room's topic; the sender must be a member."""

    type: Literal["topic"] = "topic"
    room: RoomName
    topic: Topic


class History(_Request):
    """Asks for a page of a room's stored messages."""

    type: Literal["history"] = "history"
    room: RoomName
    before: MessageId | None = None
    after: Position | None = None
    limit: Annotated[HistoryLimit, _null_means(50, HistoryLimit | None)] = 50

    @model_validator(mode="after")
    def _one_direction(self) -> Self:
        if self.before is not None and self.after is not None:
            raise ValueError("give at most one of 'before' and 'after'")
        return self


class Ping(_Request):
    """Asks the server for a `pong`, to measure or keep the connection alive."""

    type: Literal["ping"] = "ping"
    token: Token | None = None


class Pong(_Request):
    """Answers the server's `ping`."""

    type: Literal["pong"] = "pong"
    token: Token | None = None


class Bye(_Request):
    """Ends the session; the server answers `ok` and closes."""

    type: Literal["bye"] = "bye"


Command = Annotated[
    Hello
    | Join
    | Part
    | Say
    | Dm
    | Nick
    | Register
    | Rooms
    | Members
    | SetTopic
    | History
    | Ping
    | Pong
    | Bye,
    Field(discriminator="type"),
]


# --- events: server to client -----------------------------------------------


class Limits(_Message):
    """The limits this server enforces, announced in `welcome`."""

    max_frame: Annotated[int, Field(ge=1)]
    max_text: Annotated[int, Field(ge=1)]
    rate: Annotated[float, Field(gt=0)]
    burst: Annotated[int, Field(ge=1)]
    history: Annotated[int, Field(ge=0)]
    ping_interval: Annotated[float, Field(gt=0)]
    ping_timeout: Annotated[float, Field(gt=0)]
    # Since 1.3; absent from older servers.
    handshake_timeout: Annotated[float, Field(gt=0)] | None = None
    soft_limit: Annotated[int, Field(ge=1)] | None = None
    soft_seconds: Annotated[float, Field(gt=0)] | None = None
    hard_limit: Annotated[int, Field(ge=1)] | None = None
    max_rooms: Annotated[int, Field(ge=1)] | None = None
    max_members: Annotated[int, Field(ge=1)] | None = None
    large_room: Annotated[int, Field(ge=1)] | None = None


class Welcome(_Reply):
    """Answers `hello`: the session is open."""

    type: Literal["welcome"] = "welcome"
    session: Label
    nick: NickName
    server: Label
    version: Version
    limits: Limits
    motd: str | None = None
    # Since 1.3: the generation of the server's stored state (section 13), this
    # session's resume token, and whether `hello.resume` took over a session.
    epoch: Epoch | None = None
    resume: ResumeToken | None = None
    resumed: Annotated[bool, _null_means(False, bool | None)] = False


class RoomMessage(_Reply):
    """A message in a room. The sender's own copy carries `ref` and is its acknowledgement."""

    type: Literal["message"] = "message"
    id: MessageId
    room: RoomName
    nick: NickName
    text: Text
    ts: Timestamp


class DirectMessage(_Reply):
    """A direct message, to its recipient and (with `ref`) back to its sender."""

    type: Literal["dm"] = "dm"
    id: MessageId
    nick: NickName
    to: NickName
    text: Text
    ts: Timestamp


class Joined(_Reply):
    """Answers `join`: who is there, the topic and the latest messages."""

    type: Literal["joined"] = "joined"
    room: RoomName
    topic: Topic
    members: list[NickName]
    history: list[RoomMessage]
    # Since 1.3: how many members the room has (`members` may be the first page
    # only), and whether older messages exist than those in `history`.
    count: Annotated[int, Field(ge=0)] | None = None
    more: Annotated[bool, _null_means(False, bool | None)] = False


class Ok(_Reply):
    """Answers a command that has nothing else to say (`part`, `register`, `bye`)."""

    type: Literal["ok"] = "ok"


class MemberJoined(_Message):
    """Someone entered a room you are in."""

    type: Literal["member_joined"] = "member_joined"
    room: RoomName
    nick: NickName


class MemberCount(_Message):
    """A large room's member count moved (since 1.3; section 12)."""

    type: Literal["member_count"] = "member_count"
    room: RoomName
    count: Annotated[int, Field(ge=0)]


class LeaveReason(StrEnum):
    """Why a member left a room."""

    PART = "part"
    QUIT = "quit"
    TIMEOUT = "timeout"
    LOST = "lost"
    KICKED = "kicked"


class MemberLeft(_Message):
    """Someone left a room you are in."""

    type: Literal["member_left"] = "member_left"
    room: RoomName
    nick: NickName
    reason: LeaveReason


class Renamed(_Reply):
    """A nick changed: sent once to everyone sharing a room with it, and to its owner."""

    type: Literal["renamed"] = "renamed"
    old: NickName
    new: NickName


class TopicChanged(_Reply):
    """A room's topic changed."""

    type: Literal["topic"] = "topic"
    room: RoomName
    topic: Topic
    nick: NickName


class RoomInfo(_Message):
    """One row of `rooms`."""

    room: RoomName
    members: Annotated[int, Field(ge=0)]
    topic: Topic


class RoomList(_Reply):
    """Answers `rooms`."""

    type: Literal["rooms"] = "rooms"
    rooms: list[RoomInfo]
    more: Annotated[bool, _null_means(False, bool | None)] = False


class MemberList(_Reply):
    """Answers `members`."""

    type: Literal["members"] = "members"
    room: RoomName
    members: list[NickName]
    count: Annotated[int, Field(ge=0)] | None = None
    more: Annotated[bool, _null_means(False, bool | None)] = False


class HistoryPage(_Reply):
    """Answers `history`: messages in ascending id order."""

    type: Literal["history"] = "history"
    room: RoomName
    messages: list[RoomMessage]
    more: bool


class PongReply(_Reply):
    """Answers `ping`, with its token."""

    type: Literal["pong"] = "pong"
    token: Token | None = None


class ServerPing(_Message):
    """The server checks that an idle client is alive; answer with `pong`."""

    type: Literal["ping"] = "ping"
    token: Token | None = None


class Error(_Reply):
    """A command failed, or (when `fatal`) the server is about to close the connection."""

    type: Literal["error"] = "error"
    code: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    message: str
    fatal: Annotated[bool, _null_means(False, bool | None)] = False


Event = Annotated[
    Welcome
    | RoomMessage
    | DirectMessage
    | Joined
    | Ok
    | MemberJoined
    | MemberLeft
    | MemberCount
    | Renamed
    | TopicChanged
    | RoomList
    | MemberList
    | HistoryPage
    | PongReply
    | ServerPing
    | Error,
    Field(discriminator="type"),
]
