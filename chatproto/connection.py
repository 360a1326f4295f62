"""Sans-IO connection state machines, one for each end of a session.

Bytes in, messages out; messages in, bytes out. A connection object knows the
session's rules (`hello` first and once, nothing after `bye`, no event and no
non-fatal error before `welcome`, nothing after a fatal error: the tables in
`chatproto.rules`; every `ref` an answer to an outstanding request of the
right kind; no frame over `max_frame`; short error texts) and refuses to
break them itself: a caller that tries gets a `LocalProtocolError`; a peer
that does is reported as a `RemoteProtocolError`. No I/O happens here, so any transport
(blocking sockets, selectors, asyncio, a test's byte strings) can drive it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from pydantic import BaseModel, ValidationError

from chatproto.codec import (
    command_error,
    constant_error,
    encode,
    parse_event,
    validate_command,
)
from chatproto.errors import (
    ErrorCode,
    FrameTooLarge,
    InvalidJson,
    LocalProtocolError,
    RemoteProtocolError,
    UnknownType,
)
from chatproto.framing import DEFAULT_MAX_FRAME, FrameDecoder, is_blank
from chatproto.messages import (
    Bye,
    Command,
    DirectMessage,
    Error,
    Event,
    Hello,
    HistoryPage,
    Joined,
    MemberList,
    Ok,
    Pong,
    PongReply,
    Renamed,
    RequestId,
    RoomList,
    RoomMessage,
    TopicChanged,
    Welcome,
)
from chatproto.rules import Phase, Step, advance

__all__ = ["MAX_ERROR_TEXT", "ClientConnection", "Rejected", "ServerConnection", "State"]

#: The longest error message a server sends (PROTOCOL.md section 8): fixed texts
#: are short, and a message that quoted the client's frame would not be.
MAX_ERROR_TEXT = 200


class State(Enum):
    """Where a session stands, seen from one end."""

    AWAIT_HELLO = "await_hello"
    HELLO_SENT = "hello_sent"
    GREETED = "greeted"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Rejected:
    """A frame the server could not accept. Answer it with `error_event()`."""

    error: RemoteProtocolError

    def error_event(self) -> Error:
        """The `error` frame that tells the client what was wrong with its frame."""
        err = self.error
        return Error(code=err.code.value, message=err.message, fatal=err.fatal, ref=err.ref)


# The reply that each command with an `id` is answered by (besides `error`).
# `pong` answers the server and gets no reply, so its id is never outstanding.
_REPLY_TO: Final[dict[str, type[BaseModel]]] = {
    "hello": Welcome,
    "join": Joined,
    "part": Ok,
    "say": RoomMessage,
    "dm": DirectMessage,
    "nick": Renamed,
    "register": Ok,
    "rooms": RoomList,
    "members": MemberList,
    "topic": TopicChanged,
    "history": HistoryPage,
    "ping": PongReply,
    "bye": Ok,
}


class _Correlator:
    """Outstanding request ids, each with the kind of reply it awaits."""

    _ERROR_ONLY: Final = ""

    def __init__(self) -> None:
        self.pending: dict[RequestId, str] = {}

    def __len__(self) -> int:
        return len(self.pending)

    def __contains__(self, rid: RequestId) -> bool:
        return rid in self.pending

    def open(self, command: Command) -> None:
        if command.id is not None and not isinstance(command, Pong):
            self.pending[command.id] = command.type

    def reserve(self, rid: RequestId | None) -> bool:
        """Hold `rid` for the error answering a rejected frame, if it is free."""
        if rid is None or rid in self.pending:
            return False
        self.pending[rid] = self._ERROR_ONLY
        return True

    def close(self, reply: Event, ref: RequestId) -> str | None:
        """Settle `ref` with `reply`; return why that is wrong, or None."""
        kind = self.pending.get(ref)
        if kind is None:
            return f"ref {ref!r} answers no outstanding request"
        if not isinstance(reply, Error) and (
            kind == self._ERROR_ONLY or not isinstance(reply, _REPLY_TO[kind])
        ):
            return f"{reply.type!r} cannot answer {kind or 'a rejected frame'!r}"
        del self.pending[ref]
        return None


_SESSION_TYPES: Final = frozenset({"hello", "bye"})


class _Endpoint:
    """What both ends keep: the decoder, both streams' phases and the outstanding requests."""

    _GREETED: State  # how this end names "hello sent, welcome not yet"

    def __init__(self, *, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._decoder = FrameDecoder(max_frame)
        self._commands = Phase.IDLE
        self._events = Phase.IDLE
        self._state = State.AWAIT_HELLO
        self._requests = _Correlator()

    @property
    def state(self) -> State:
        return self._state

    @property
    def max_frame(self) -> int:
        """The largest frame, line end excluded, either side may send now."""
        return self._decoder.max_frame

    @property
    def outstanding(self) -> int:
        """Requests not yet answered."""
        return len(self._requests)

    @property
    def _input_ended(self) -> bool:
        return self._commands is Phase.DONE

    def _allowed(self, step: Step) -> bool:
        return advance(self._commands, self._events, step) is not None

    def _step(self, step: Step) -> None:
        phases = advance(self._commands, self._events, step)
        assert phases is not None, step
        self._commands, self._events = phases
        # The one public state, derived: the fast paths test only this.
        if self._events is Phase.DONE:
            self._state = State.CLOSED
        elif self._commands is Phase.DONE:
            self._state = State.CLOSING
        elif self._commands is Phase.IDLE:
            self._state = State.AWAIT_HELLO
        elif self._events is Phase.GREETED:
            self._state = self._GREETED
        else:
            self._state = State.OPEN

    def _check_size(self, data: bytes, what: str) -> None:
        if len(data) - 1 > self._decoder.max_frame:
            raise LocalProtocolError(
                f"cannot send {what!r}: {len(data) - 1} bytes exceed max_frame "
                f"({self._decoder.max_frame})",
                code=ErrorCode.FRAME_TOO_LARGE,
            )

    def close(self) -> None:
        """Mark the session over, for example because the transport is gone."""
        self._step(Step.CLOSE)


def _event_step(event: Event) -> Step:
    if isinstance(event, Welcome):
        return Step.WELCOME
    if isinstance(event, Error):
        return Step.FATAL if event.fatal else Step.ERROR
    return Step.EVENT


class ServerConnection(_Endpoint):
    """The server's end of one client session.

    `receive_data` returns the client's commands in order, with a `Rejected`
    in place of each frame that broke the protocol, so that one bad frame
    costs the client an `error` and not the frames around it. Input ends
    with `bye` or with a fatal rejection (always the last item returned);
    the state is then CLOSING, and sending a fatal `error` makes it CLOSED.
    `send` refuses what the spec forbids the server to send: an event out of
    turn (rules.EVENTS), a `ref` that answers nothing, a frame over `max_frame`.
    """

    _GREETED = State.GREETED

    def receive_data(self, data: bytes) -> list[Command | Rejected]:
        if self._commands is Phase.DONE:
            raise LocalProtocolError(
                "receive_data after the client's input has ended", code=ErrorCode.OUT_OF_ORDER
            )
        try:
            frames = self._decoder.feed(data)
        except FrameTooLarge as exc:
            out = self._receive_frames(exc.frames)
            if not self._input_ended:
                out.append(self._reject(exc))
            return out
        return self._receive_frames(frames)

    def _receive_frames(self, frames: list[bytes]) -> list[Command | Rejected]:
        out: list[Command | Rejected] = []
        pending = self._requests.pending
        for frame in frames:
            try:
                command = validate_command(frame)
            except ValidationError as exc:
                if is_blank(frame):
                    continue  # no frame: never answered (PROTOCOL.md section 2)
                out.append(self._reject(command_error(frame, exc)))
            else:
                # The common case, kept cheap: an open session, no handshake
                # or goodbye, a fresh id or none, no unknown fields
                # (rules.COMMANDS: OPEN stays OPEN).
                rid = command.id
                if (
                    self._state is State.OPEN
                    and command.type not in _SESSION_TYPES
                    and (rid is None or rid not in pending)
                    and not command.__pydantic_extra__
                ):
                    if rid is not None and command.type != "pong":
                        pending[rid] = command.type
                    out.append(command)
                    continue
                error = constant_error(frame) if command.__pydantic_extra__ else None
                out.append(self._accept(command) if error is None else self._reject(error))
            if self._input_ended:
                break
        return out

    def _accept(self, command: Command) -> Command | Rejected:
        if self._commands is Phase.IDLE and not isinstance(command, Hello):
            return self._reject(
                RemoteProtocolError(
                    f"'{command.type}' before 'hello'", code=ErrorCode.OUT_OF_ORDER, ref=command.id
                )
            )
        if self._commands is Phase.OPEN and isinstance(command, Hello):
            return self._reject(
                RemoteProtocolError(
                    "'hello' may be sent only once", code=ErrorCode.OUT_OF_ORDER, ref=command.id
                )
            )
        # A pong's id is ignored (PROTOCOL.md 6.11): it never collides.
        if (
            command.id is not None
            and not isinstance(command, Pong)
            and command.id in self._requests
        ):
            return self._reject(
                RemoteProtocolError(
                    "the id is in use by an unanswered request", code=ErrorCode.DUPLICATE_ID
                )
            )
        self._requests.open(command)
        if isinstance(command, Hello):
            self._step(Step.HELLO)
        elif isinstance(command, Bye):
            self._step(Step.BYE)
        else:
            self._step(Step.COMMAND)
        return command

    def _reject(self, exc: RemoteProtocolError) -> Rejected:
        if not self._requests.reserve(exc.ref):
            exc.ref = None
        if self._commands is Phase.IDLE:
            exc.fatal = True  # every error before welcome is fatal
        self._step(Step.ENDING if exc.fatal else Step.REJECTED)
        return Rejected(exc)

    def send(self, event: Event) -> bytes:
        """Encode `event` for this client, checking that the session allows it."""
        step = _event_step(event)
        if not self._allowed(step):
            raise LocalProtocolError(
                _why_not(self._events, step, event), code=ErrorCode.OUT_OF_ORDER
            )
        if isinstance(event, Error) and len(event.message) > MAX_ERROR_TEXT:
            raise LocalProtocolError(
                f"an error message is a short fixed text, at most {MAX_ERROR_TEXT} characters",
                code=ErrorCode.INVALID_FIELDS,
            )
        data = encode(event)
        self._check_size(data, event.type)
        ref = getattr(event, "ref", None)
        if ref is not None:
            problem = self._requests.close(event, ref)
            if problem is not None:
                raise LocalProtocolError(problem, code=ErrorCode.OUT_OF_ORDER)
        self._step(step)
        return data


def _why_not(events: Phase, step: Step, event: Event) -> str:
    if events is Phase.DONE:
        return f"cannot send {event.type!r}: the connection is closed"
    if step is Step.ERROR:
        return "an error before 'welcome' must be fatal"
    if step is Step.WELCOME:
        return "'welcome' answers 'hello', once"
    return f"cannot send {event.type!r} before 'welcome'"


class ClientConnection(_Endpoint):
    """The client's end of a session.

    A frame from the server that breaks the protocol raises
    `RemoteProtocolError`: there is nobody to report it to, so the caller
    should close the connection. Events of a type this version does not know
    are skipped, so that a newer server can add events.
    """

    _GREETED = State.HELLO_SENT

    def send(self, command: Command) -> bytes:
        """Encode `command`, checking that the session allows it now."""
        if isinstance(command, Hello):
            step = Step.HELLO
        elif isinstance(command, Bye):
            step = Step.BYE
        else:
            step = Step.COMMAND
        if not self._allowed(step):
            if self._commands is Phase.IDLE:
                why = f"cannot send {command.type!r} before 'hello'"
            elif self._commands is Phase.DONE:
                why = f"cannot send {command.type!r} after the session ended"
            else:
                why = "'hello' may be sent only once"
            raise LocalProtocolError(why, code=ErrorCode.OUT_OF_ORDER)
        # A pong's id is ignored (PROTOCOL.md 6.11): it never collides.
        if (
            command.id is not None
            and not isinstance(command, Pong)
            and command.id in self._requests
        ):
            raise LocalProtocolError(
                f"id {command.id!r} is already outstanding", code=ErrorCode.DUPLICATE_ID
            )
        data = encode(command)
        self._check_size(data, command.type)
        self._requests.open(command)
        self._step(step)
        return data

    def receive_data(self, data: bytes) -> list[Event]:
        if self._events is Phase.DONE and data:
            raise RemoteProtocolError(
                "data after the connection was closed", code=ErrorCode.OUT_OF_ORDER, fatal=True
            )
        out: list[Event] = []
        for frame in self._decoder.feed(data):
            try:
                event = parse_event(frame)
            except UnknownType:
                continue
            except InvalidJson:
                if is_blank(frame):
                    continue  # no frame (PROTOCOL.md section 2)
                raise
            self._check(event)
            out.append(event)
            if self._events is Phase.DONE:
                break  # a fatal error is the last frame of a session
        return out

    def _check(self, event: Event) -> None:
        step = _event_step(event)
        if not self._allowed(step):
            if step is Step.WELCOME:
                raise RemoteProtocolError("unexpected 'welcome'", code=ErrorCode.OUT_OF_ORDER)
            raise RemoteProtocolError(
                f"{event.type!r} before 'welcome'", code=ErrorCode.OUT_OF_ORDER
            )
        ref = getattr(event, "ref", None)
        if ref is not None:
            problem = self._requests.close(event, ref)
            if problem is not None:
                raise RemoteProtocolError(problem, code=ErrorCode.OUT_OF_ORDER)
        if isinstance(event, Welcome):
            self._decoder.max_frame = event.limits.max_frame
        self._step(step)
