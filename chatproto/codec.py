"""Frames to messages and back.

Decoding goes straight from a frame's bytes to a model in one pydantic pass;
only when that fails is the frame looked at again, to name the error. Error
messages are fixed texts per code that name at most the offending field: they
never quote the frame, so an error frame is small whatever the client sent
and carries none of its bytes (PROTOCOL.md section 8). Encoding writes compact
JSON, which never holds a raw line feed, plus LF.
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
    "constant_error",
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
#: Its parser takes `NaN` and `Infinity` in fields no model reads: a command
#: with unknown fields must still be cleared by `constant_error` before use.
validate_command = _COMMANDS.validate_json
EVENT_TYPES = _type_names(_EVENTS)


def constant_error(frame: bytes) -> RemoteProtocolError | None:
    """The error for a frame that validated yet holds `NaN` or `Infinity`, or None.

    Those are not JSON (PROTOCOL.md section 2), but the models' parser takes
    them where no model looks: in unknown fields. A command keeps its unknown
    fields aside (`model_extra`), so only a command that has some needs this
    second look."""
    try:
        decode_object(frame)
    except RemoteProtocolError as bad:
        return bad
    return None


def parse_command(frame: bytes) -> Command:
    """Validate one frame as a client-to-server command."""
    try:
        command = _COMMANDS.validate_json(frame)
    except ValidationError as exc:
        raise command_error(frame, exc) from None
    if command.__pydantic_extra__:
        _raise_constant(frame)
    return command


def command_error(frame: bytes, exc: ValidationError) -> RemoteProtocolError:
    """The typed error for a frame that failed validation as a command."""
    return _classify(frame, exc, COMMAND_TYPES, "id")


def parse_event(frame: bytes) -> Event:
    """Validate one frame as a server-to-client event."""
    try:
        event = _EVENTS.validate_json(frame)
    except ValidationError as exc:
        raise _classify(frame, exc, EVENT_TYPES, "ref") from None
    if b"NaN" in frame or b"Infinity" in frame:
        _raise_constant(frame)
    return event


def _raise_constant(frame: bytes) -> None:
    error = constant_error(frame)
    if error is not None:
        raise error


def encode(message: BaseModel) -> bytes:
    """One frame for `message`: compact JSON, absent optional fields left out, then LF."""
    return message.__pydantic_serializer__.to_json(message, exclude_none=True) + b"\n"


def _classify(
    frame: bytes, exc: ValidationError, known: frozenset[str], ref_field: str
) -> RemoteProtocolError:
    # The slow path, taken only for bad frames: find the first rule broken.
    # The same parser decides what is JSON, so this agrees with the fast path.
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
        return UnknownType("the frame's type is missing or unknown", ref=ref)
    model = _model_fields(kind, known is COMMAND_TYPES)
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    for err in errors:
        loc = err["loc"]
        if len(loc) > 1 and loc[1] in model:
            return InvalidFields(f"invalid field '{loc[1]}' in '{kind}'", ref=ref)
    for err in errors:
        if err["type"] == "value_error":  # one of the models' own rules: a fixed text
            rule = err["msg"].removeprefix("Value error, ")
            return InvalidFields(f"invalid fields in '{kind}': {rule}", ref=ref)
    return InvalidFields(f"invalid fields in '{kind}'", ref=ref)


def _model_fields(kind: str, command: bool) -> frozenset[str]:
    return _COMMAND_FIELDS[kind] if command else _EVENT_FIELDS[kind]


def _fields_by_type(adapter: TypeAdapter[Any]) -> dict[str, frozenset[str]]:
    schema = adapter.json_schema()
    out: dict[str, frozenset[str]] = {}
    for name, ref in schema["discriminator"]["mapping"].items():
        model = schema["$defs"][ref.rsplit("/", 1)[-1]]
        out[name] = frozenset(model["properties"])
    return out


_COMMAND_FIELDS = _fields_by_type(_COMMANDS)
_EVENT_FIELDS = _fields_by_type(_EVENTS)
