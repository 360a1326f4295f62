"""Typed protocol errors, each carrying the stable code that goes on the wire.

As in h11, an error says whose fault it is: a `LocalProtocolError` means this
side tried to do something the protocol forbids (a bug in the caller), a
`RemoteProtocolError` means the peer did.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ErrorCode",
    "FrameTooLarge",
    "InvalidFields",
    "InvalidJson",
    "InvalidUtf8",
    "LocalProtocolError",
    "NotAnObject",
    "ProtocolError",
    "RemoteProtocolError",
    "UnknownType",
]


class ErrorCode(StrEnum):
    """Every error code of protocol v1; PROTOCOL.md has the table."""

    FRAME_TOO_LARGE = "frame_too_large"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_FIELDS = "invalid_fields"
    DUPLICATE_ID = "duplicate_id"
    OUT_OF_ORDER = "out_of_order"
    UNSUPPORTED_VERSION = "unsupported_version"
    NICK_IN_USE = "nick_in_use"
    AUTH_FAILED = "auth_failed"
    ALREADY_REGISTERED = "already_registered"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    TOO_MANY_ROOMS = "too_many_rooms"
    ROOM_FULL = "room_full"
    NO_SUCH_ROOM = "no_such_room"
    NOT_IN_ROOM = "not_in_room"
    NO_SUCH_NICK = "no_such_nick"
    RATE_LIMITED = "rate_limited"
    SERVER_FULL = "server_full"
    SLOW_CONSUMER = "slow_consumer"
    TIMEOUT = "timeout"
    SHUTDOWN = "shutdown"
    INTERNAL_ERROR = "internal_error"
    UNAVAILABLE = "unavailable"
    # Since 1.3.
    TOO_MANY_ERRORS = "too_many_errors"
    STORAGE_FULL = "storage_full"
    QUOTA_EXCEEDED = "quota_exceeded"
    REPLACED = "replaced"


class ProtocolError(Exception):
    """A violation of the protocol, with the code and reference to report it by."""

    code: ErrorCode
    fatal: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        fatal: bool | None = None,
        ref: str | int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        elif not hasattr(self, "code"):
            raise TypeError(f"{type(self).__name__} needs an error code")
        if fatal is not None:
            self.fatal = fatal
        self.ref = ref

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code.value!r})"


class LocalProtocolError(ProtocolError):
    """This side broke the protocol: the calling code has a bug."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol."""


class FrameTooLarge(RemoteProtocolError):
    """A frame passed the maximum size; the stream cannot be resynchronised."""

    code = ErrorCode.FRAME_TOO_LARGE
    fatal = True

    def __init__(self, message: str, *, frames: list[bytes] | None = None) -> None:
        super().__init__(message)
        self.frames = frames or []


class InvalidUtf8(RemoteProtocolError):
    """A frame's bytes are not UTF-8."""

    code = ErrorCode.INVALID_UTF8


class InvalidJson(RemoteProtocolError):
    """A frame is UTF-8 but not JSON."""

    code = ErrorCode.INVALID_JSON


class NotAnObject(RemoteProtocolError):
    """A frame is JSON but not a JSON object."""

    code = ErrorCode.NOT_AN_OBJECT


class UnknownType(RemoteProtocolError):
    """A frame's `type` is missing or names no message of this direction."""

    code = ErrorCode.UNKNOWN_TYPE


class InvalidFields(RemoteProtocolError):
    """A frame names a known type but its fields break the message's rules."""

    code = ErrorCode.INVALID_FIELDS
