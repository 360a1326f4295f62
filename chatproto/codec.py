"""Frames to messages and back.

Decoding goes straight from a frame's bytes to a model in one pydantic pass;
only when that fails is the frame looked at again, to name the exact error.
Encoding writes compact JSON, which never holds a raw line feed, plus LF.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from chatproto.errors import InvalidFields, RemoteProtocolError, UnknownType
from chatproto.framing import decode_object
from chatproto.messages import Command, Event, RequestId

__all__ = [
    "COMMAND_TYPES",
    "EVENT_TYPES",
    "command_error",
    "encode",
    "parse_command",
    "parse_event",
    "validate_command",
]

_COMMANDS: TypeAdapter[Command] = TypeAdapter(Command)
_EVENTS: TypeAdapter[Event] = TypeAdapter(Event)
_REQUEST_ID: TypeAdapter[RequestId | None] = TypeAdapter(RequestId | None, config={"strict": True})


def _type_names(adapter: TypeAdapter[Any]) -> frozenset[str]:
    schema = adapter.json_schema()
    return frozenset(schema["discriminator"]["mapping"])


COMMAND_TYPES = _type_names(_COMMANDS)
#: The fast path: frame bytes to a command, raising pydantic's ValidationError.
validate_command = _COMMANDS.validate_json
EVENT_TYPES = _type_names(_EVENTS)


def parse_command(frame: bytes) -> Command:
    """Validate one frame as a client-to-server command."""
    try:
        return _COMMANDS.validate_json(frame)
    except ValidationError as exc:
        raise command_error(frame, exc) from None


def command_error(frame: bytes, exc: ValidationError) -> RemoteProtocolError:
    """The typed error for a frame that failed validation as a command."""
    return _classify(frame, exc, COMMAND_TYPES, "id")


def parse_event(frame: bytes) -> Event:
    """Validate one frame as a server-to-client event."""
    try:
        return _EVENTS.validate_json(frame)
    except ValidationError as exc:
        raise _classify(frame, exc, EVENT_TYPES, "ref") from None


def encode(message: BaseModel) -> bytes:
    """One frame for `message`: compact JSON, absent optional fields left out, then LF."""
    return message.__pydantic_serializer__.to_json(message, exclude_none=True) + b"\n"


def _classify(
    frame: bytes, exc: ValidationError, known: frozenset[str], ref_field: str
) -> RemoteProtocolError:
    # The slow path, taken only for bad frames: find the first rule broken.
    try:
        obj = decode_object(frame)
    except RemoteProtocolError as bad:
        return bad
    try:
        ref = _REQUEST_ID.validate_python(obj.get(ref_field))
    except ValidationError:
        ref = None
    kind = obj.get("type")
    if not isinstance(kind, str) or kind not in known:
        return UnknownType(f"unknown message type {kind!r}", ref=ref)
    details = "; ".join(
        f"{'.'.join(str(p) for p in err['loc'][1:]) or kind}: {err['msg']}"
        for err in exc.errors(include_url=False)
    )
    return InvalidFields(f"invalid {kind!r}: {details}", ref=ref)
