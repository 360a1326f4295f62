"""encode / parse_command / parse_event, over every message type."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

import chatproto
from chatproto import (
    COMMAND_TYPES,
    EVENT_TYPES,
    MAX_TEXT,
    Bye,
    Command,
    DirectMessage,
    Dm,
    Error,
    Event,
    FrameDecoder,
    Hello,
    History,
    HistoryPage,
    InvalidFields,
    InvalidJson,
    InvalidUtf8,
    Join,
    Joined,
    LeaveReason,
    Limits,
    MemberCount,
    MemberJoined,
    MemberLeft,
    MemberList,
    Members,
    Nick,
    NotAnObject,
    Ok,
    Part,
    Ping,
    Pong,
    PongReply,
    Register,
    Rejected,
    Renamed,
    RoomInfo,
    RoomList,
    RoomMessage,
    Rooms,
    Say,
    ServerConnection,
    ServerPing,
    SetTopic,
    State,
    TopicChanged,
    UnknownType,
    Welcome,
    encode,
    parse_command,
    parse_event,
)
from tests.strategies import (
    COMMAND_CLASSES,
    COMMAND_STRATEGIES,
    EVENT_CLASSES,
    EVENT_STRATEGIES,
    MESSAGE_CLASSES,
    MODEL_STRATEGIES,
    chunked,
    commands,
    events,
    messages_any,
)

# --- the strategies themselves ---------------------------------------------------


def test_strategies_cover_every_type_name() -> None:
    assert set(COMMAND_STRATEGIES) == set(COMMAND_TYPES)
    assert set(EVENT_STRATEGIES) == set(EVENT_TYPES)
    assert len(COMMAND_CLASSES) == len(COMMAND_TYPES) == 14
    assert len(EVENT_CLASSES) == len(EVENT_TYPES) == 16


def test_strategies_cover_every_message_class() -> None:
    exported = {
        obj
        for obj in vars(chatproto.messages).values()
        if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__name__ in dir(chatproto)
    }
    assert exported == set(MESSAGE_CLASSES) == set(MODEL_STRATEGIES)
    assert {*COMMAND_CLASSES, *EVENT_CLASSES, Limits, RoomInfo} == exported


@pytest.mark.parametrize("name", sorted(COMMAND_STRATEGIES))
@given(data=st.data())
def test_command_strategy_builds_its_type(name: str, data: st.DataObject) -> None:
    command = data.draw(COMMAND_STRATEGIES[name])
    assert command.type == name
    # Valid by the model's own rules, judged afresh from plain data.
    assert type(command).model_validate_json(command.model_dump_json()) == command


@pytest.mark.parametrize("name", sorted(EVENT_STRATEGIES))
@given(data=st.data())
def test_event_strategy_builds_its_type(name: str, data: st.DataObject) -> None:
    event = data.draw(EVENT_STRATEGIES[name])
    assert event.type == name
    assert type(event).model_validate_json(event.model_dump_json()) == event


# --- round trips ---------------------------------------------------------------------


@given(st.lists(commands, min_size=1, max_size=6), st.data())
def test_commands_round_trip_through_any_chunking(sent: list[Command], data: st.DataObject) -> None:
    wire = b"".join(encode(c) for c in sent)
    decoder = FrameDecoder()
    frames = [f for chunk in data.draw(chunked(wire)) for f in decoder.feed(chunk)]
    assert [parse_command(f) for f in frames] == sent


@given(st.lists(events, min_size=1, max_size=6), st.data())
def test_events_round_trip_through_any_chunking(sent: list[Event], data: st.DataObject) -> None:
    wire = b"".join(encode(e) for e in sent)
    decoder = FrameDecoder()
    frames = [f for chunk in data.draw(chunked(wire)) for f in decoder.feed(chunk)]
    assert [parse_event(f) for f in frames] == sent


@given(commands, st.data())
def test_command_round_trips_through_a_server_connection(
    command: Command, data: st.DataObject
) -> None:
    server = ServerConnection()
    greeting = b"" if isinstance(command, Hello) else encode(Hello(nick="probe"))
    wire = greeting + encode(command)
    received: list[Command | Rejected] = []
    for chunk in data.draw(chunked(wire)):
        if server.state is State.CLOSING:  # after `bye`, input is over
            break
        received += server.receive_data(chunk)
    assert received[-1] == command
    assert len(received) == (1 if isinstance(command, Hello) else 2)


@given(messages_any)
def test_a_frame_holds_exactly_one_line_feed_at_its_end(message: Command | Event) -> None:
    frame = encode(message)
    assert frame.endswith(b"\n")
    assert frame.count(b"\n") == 1
    assert b"\r" not in frame
    json.loads(frame)  # and the rest is JSON


def test_encoding_is_compact_and_leaves_out_absent_fields() -> None:
    assert encode(Join(room="lobby")) == b'{"type":"join","room":"lobby"}\n'
    assert encode(Ok(ref=3)) == b'{"ref":3,"type":"ok"}\n'
    assert encode(Say(id="a", room="r", text="x\ny")) == (
        b'{"id":"a","type":"say","room":"r","text":"x\\ny"}\n'
    )


@given(messages_any, st.dictionaries(st.text(min_size=1).map(lambda k: "x_" + k), st.integers()))
def test_unknown_fields_are_ignored(message: Command | Event, extra: dict[str, int]) -> None:
    obj = json.loads(encode(message))
    obj.update(extra)
    obj["future_field"] = {"nested": [1, "two", None]}
    frame = json.dumps(obj).encode()
    parse = parse_command if isinstance(message, COMMAND_CLASSES) else parse_event
    assert parse(frame) == message


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "ref"),
    [
        (b'{"type": "shout", "id": 7}', 7),
        (b'{"type": "shout", "id": "q-1"}', "q-1"),
        (b'{"type": "shout"}', None),
        (b'{"id": 8}', 8),  # no type at all
        (b'{"type": 5, "id": 9}', 9),
        (b'{"type": null, "id": 0}', 0),
        (b'{"type": "welcome", "id": 10}', 10),  # an event type is no command
        (b'{"type": "HELLO", "nick": "a"}', None),  # type names are case-sensitive
        (b'{"type": "shout", "id": -1}', None),  # an id that is no id is no ref
        (b'{"type": "shout", "id": "5", "ref": 4}', "5"),
        (b'{"type": "shout", "id": true}', None),
        (b'{"type": "shout", "id": 1.5}', None),
    ],
)
def test_unknown_command_type(frame: bytes, ref: object) -> None:
    with pytest.raises(UnknownType) as info:
        parse_command(frame)
    assert info.value.code == "unknown_type"
    assert info.value.ref == ref
    assert type(info.value.ref) is type(ref)


@pytest.mark.parametrize(
    ("frame", "ref"),
    [
        (b'{"type": "shout", "ref": 7}', 7),
        (b'{"type": "join", "room": "a", "ref": "r"}', "r"),  # a command type is no event
        (b'{"type": "shout", "id": 7}', None),  # events refer by `ref`
    ],
)
def test_unknown_event_type(frame: bytes, ref: object) -> None:
    with pytest.raises(UnknownType) as info:
        parse_event(frame)
    assert info.value.code == "unknown_type"
    assert info.value.ref == ref


INVALID_COMMANDS = [
    b'{"type": "hello"}',  # nick missing
    b'{"type": "hello", "nick": "9lives"}',  # nick starts with a digit
    b'{"type": "hello", "nick": "' + b"a" * 25 + b'"}',  # nick too long
    b'{"type": "hello", "nick": "caf\xc3\xa9"}',  # nick not ASCII
    b'{"type": "hello", "nick": "ok", "version": "one"}',
    b'{"type": "hello", "nick": "ok", "client": ""}',
    b'{"type": "join", "room": "Lobby"}',  # rooms are lower case
    b'{"type": "join", "room": "_x"}',
    b'{"type": "join", "room": "' + b"r" * 33 + b'"}',
    b'{"type": "join"}',
    b'{"type": "say", "room": "a", "text": ""}',
    b'{"type": "say", "room": "a", "text": "bell\\u0007"}',
    b'{"type": "say", "room": "a", "text": "c1\\u0085"}',
    b'{"type": "say", "room": "a", "text": "cr\\r"}',
    b'{"type": "say", "room": "a", "text": "' + b"t" * (MAX_TEXT + 1) + b'"}',
    b'{"type": "say", "room": "a", "text": 5}',
    b'{"type": "dm", "to": "no one", "text": "hi"}',
    b'{"type": "nick", "nick": ""}',
    b'{"type": "members", "room": null}',
    b'{"type": "topic", "room": "a", "topic": "tab\\tno"}',
    b'{"type": "topic", "room": "a", "topic": "' + b"t" * 301 + b'"}',
    b'{"type": "history", "room": "a", "limit": 0}',
    b'{"type": "history", "room": "a", "limit": 101}',
    b'{"type": "history", "room": "a", "before": 0}',
    b'{"type": "history", "room": "a", "before": 5, "after": 2}',
    b'{"type": "ping", "token": "' + b"k" * 65 + b'"}',
    b'{"type": "bye", "id": ""}',
    b'{"type": "bye", "id": 9007199254740992}',
    b'{"type": "bye", "id": -1}',
    b'{"type": "bye", "id": [1]}',
]


@pytest.mark.parametrize("frame", INVALID_COMMANDS)
def test_invalid_command_fields(frame: bytes) -> None:
    with pytest.raises(InvalidFields) as info:
        parse_command(frame)
    assert info.value.code == "invalid_fields"
    assert info.value.fatal is False
    kind = json.loads(frame)["type"]
    assert repr(kind) in info.value.message


def test_invalid_fields_carry_the_id_as_ref() -> None:
    with pytest.raises(InvalidFields) as info:
        parse_command(b'{"type": "join", "room": "Not A Room", "id": "j1"}')
    assert info.value.ref == "j1"
    assert "room" in info.value.message


INVALID_EVENTS = [
    b'{"type": "message", "id": 0, "room": "a", "nick": "b", "text": "t", "ts": 0}',
    b'{"type": "message", "id": 1, "room": "a", "nick": "b", "text": "t", "ts": -1}',
    b'{"type": "dm", "id": 1, "nick": "b", "text": "t", "ts": 0}',  # to missing
    b'{"type": "joined", "room": "a", "topic": "", "members": ["ok", "not ok"], "history": []}',
    b'{"type": "member_left", "room": "a", "nick": "b", "reason": "vanished"}',
    b'{"type": "rooms", "rooms": [{"room": "a", "members": -1, "topic": ""}]}',
    b'{"type": "history", "room": "a", "messages": [], "more": "no"}',
    b'{"type": "error", "code": "Bad-Code", "message": "m"}',
    b'{"type": "error", "code": "x", "message": "m", "fatal": 1}',
    b'{"type": "welcome", "session": "s", "nick": "n", "server": "v", "version": "1.0"}',
]


@pytest.mark.parametrize("frame", INVALID_EVENTS)
def test_invalid_event_fields(frame: bytes) -> None:
    with pytest.raises(InvalidFields) as info:
        parse_event(frame)
    assert info.value.code == "invalid_fields"


def test_invalid_event_carries_its_ref() -> None:
    with pytest.raises(InvalidFields) as info:
        parse_event(b'{"type": "renamed", "old": "a", "ref": 44}')
    assert info.value.ref == 44


LIMITS = '"limits": {"max_frame": 65536, "max_text": 4000, "rate": 5, "burst": 10, "history": 50, "ping_interval": 30, "ping_timeout": 10}'  # noqa: E501


@pytest.mark.parametrize(
    ("parse", "frame"),
    [
        (parse_command, b'{"type": "history", "room": "a", "limit": "5"}'),
        (parse_command, b'{"type": "history", "room": "a", "limit": 5.0}'),
        (parse_command, b'{"type": "history", "room": "a", "limit": true}'),
        (parse_command, b'{"type": "history", "room": "a", "before": "5"}'),
        (parse_command, b'{"type": "rooms", "id": 1.0}'),
        (parse_command, b'{"type": "rooms", "id": false}'),
        (parse_command, b'{"type": "join", "room": 5}'),
        (parse_command, b'{"type": "ping", "token": 5}'),
        (
            parse_event,
            b'{"type": "message", "id": "1", "room": "a", "nick": "b", "text": "t", "ts": 0}',
        ),
        (
            parse_event,
            b'{"type": "message", "id": 1, "room": "a", "nick": "b", "text": "t", "ts": "0"}',
        ),
        (parse_event, b'{"type": "history", "room": "a", "messages": [], "more": "false"}'),
        (parse_event, b'{"type": "error", "code": "x", "message": "m", "fatal": "true"}'),
        (
            parse_event,
            b'{"type": "welcome", "session": "s", "nick": "n", "server": "v", '
            b'"version": "1.0", ' + LIMITS.replace('"burst": 10', '"burst": "10"').encode() + b"}",
        ),
        (
            parse_event,
            b'{"type": "welcome", "session": "s", "nick": "n", "server": "v", '
            b'"version": 1.0, ' + LIMITS.encode() + b"}",
        ),
    ],
)
def test_no_coercion(parse: Any, frame: bytes) -> None:
    with pytest.raises(InvalidFields) as info:
        parse(frame)
    assert info.value.code == "invalid_fields"


def test_strict_fields_accept_the_right_types() -> None:
    history = parse_command(b'{"type": "history", "room": "a", "limit": 5, "before": 9}')
    assert history == History(room="a", limit=5, before=9)
    welcome = parse_event(
        b'{"type": "welcome", "session": "s", "nick": "n", "server": "v", "version": "1.0", '
        + LIMITS.encode()
        + b"}"
    )
    assert isinstance(welcome, Welcome)
    assert welcome.limits.rate == 5.0  # an integer is a fine float


def test_history_with_both_before_and_after_is_invalid() -> None:
    with pytest.raises(InvalidFields) as info:
        parse_command(b'{"type": "history", "room": "a", "before": 10, "after": 2, "id": 1}')
    assert "before" in info.value.message
    assert info.value.ref == 1
    with pytest.raises(ValidationError):
        History(room="a", before=10, after=2)
    assert parse_command(b'{"type": "history", "room": "a", "after": 2}') == History(
        room="a", after=2
    )


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (b"\xff\xfe{}", InvalidUtf8),
        (b'{"type": "ping"', InvalidJson),
        (b"", InvalidJson),
        (b"[" * 100_000, InvalidJson),
        (b'{"type": "ping", "x": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", InvalidJson),
        (b'["type", "ping"]', NotAnObject),
        (b'"ping"', NotAnObject),
    ],
)
def test_frames_that_are_no_json_object(frame: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_command(frame)
    with pytest.raises(error):
        parse_event(frame)


# --- fuzzing: only RemoteProtocolError may come out ------------------------------------------

_FIELD_NAMES = sorted(
    {name for cls in (*COMMAND_CLASSES, *EVENT_CLASSES) for name in cls.model_fields} - {"type"}
)
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
_json_objects = st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(COMMAND_TYPES | EVENT_TYPES | {"nope"}))},
    optional={name: _json_values for name in _FIELD_NAMES},
)


def _only_protocol_errors(frame: bytes) -> None:
    for parse in (parse_command, parse_event):
        try:
            message = parse(frame)
        except chatproto.RemoteProtocolError as exc:
            assert isinstance(exc.code, chatproto.ErrorCode)
            assert exc.ref is None or isinstance(exc.ref, str | int)
        else:
            assert encode(message).endswith(b"\n")


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_protocol_errors(frame: bytes) -> None:
    _only_protocol_errors(frame)


@given(st.text(max_size=300).map(str.encode))
def test_arbitrary_text_raises_only_protocol_errors(frame: bytes) -> None:
    _only_protocol_errors(frame)


@given(_json_objects)
def test_arbitrary_json_objects_raise_only_protocol_errors(obj: dict[str, Any]) -> None:
    _only_protocol_errors(json.dumps(obj).encode())


# --- one literal frame per message type ------------------------------------------------

COMMAND_EXAMPLES: list[tuple[bytes, Command]] = [
    (
        b'{"type":"hello","id":1,"nick":"alice","version":"1.0","client":"tui 0.1",'
        b'"password":"pw"}',
        Hello(id=1, nick="alice", version="1.0", client="tui 0.1", password="pw"),
    ),
    (b'{"type":"join","id":"j","room":"lobby"}', Join(id="j", room="lobby")),
    (b'{"type":"part","room":"lobby"}', Part(room="lobby")),
    (
        b'{"type":"say","id":2,"room":"lobby","text":"hi\\tthere\\n\xe2\x9c\x93"}',
        Say(id=2, room="lobby", text="hi\tthere\n\u2713"),
    ),
    (b'{"type":"dm","to":"Bob_2","text":"psst"}', Dm(to="Bob_2", text="psst")),
    (
        b'{"type":"nick","id":3,"nick":"al-ice","password":"s3cret!!"}',
        Nick(id=3, nick="al-ice", password="s3cret!!"),
    ),
    (
        b'{"type":"register","id":"r","password":"correct horse"}',
        Register(id="r", password="correct horse"),
    ),
    (b'{"type":"rooms","limit":1000}', Rooms()),
    (b'{"type":"members","room":"lobby","limit":1000}', Members(room="lobby")),
    (b'{"type":"topic","room":"lobby","topic":""}', SetTopic(room="lobby", topic="")),
    (
        b'{"type":"history","room":"lobby","before":100,"limit":20}',
        History(room="lobby", before=100, limit=20),
    ),
    (b'{"type":"ping","id":"p","token":"t0"}', Ping(id="p", token="t0")),
    (b'{"type":"pong","token":"srv-1"}', Pong(token="srv-1")),
    (b'{"type":"bye","id":99}', Bye(id=99)),
]

_MSG = b'{"type":"message","id":5,"room":"lobby","nick":"bob","text":"yo","ts":1700000000000}'
_ROOM_MESSAGE = RoomMessage(id=5, room="lobby", nick="bob", text="yo", ts=1_700_000_000_000)

EVENT_EXAMPLES: list[tuple[bytes, Event]] = [
    (
        b'{"type":"welcome","ref":1,"session":"s-1","nick":"alice","server":"threadchat",'
        b'"version":"1.0","limits":{"max_frame":65536,"max_text":4000,"rate":5.0,"burst":10,'
        b'"history":50,"ping_interval":30.0,"ping_timeout":10.0},"motd":"hi","resumed":false}',
        Welcome(
            ref=1,
            session="s-1",
            nick="alice",
            server="threadchat",
            version="1.0",
            limits=Limits(
                max_frame=65536,
                max_text=4000,
                rate=5.0,
                burst=10,
                history=50,
                ping_interval=30.0,
                ping_timeout=10.0,
            ),
            motd="hi",
        ),
    ),
    (_MSG, _ROOM_MESSAGE),
    (
        b'{"type":"dm","ref":"d","id":6,"nick":"bob","to":"alice","text":"x","ts":1}',
        DirectMessage(ref="d", id=6, nick="bob", to="alice", text="x", ts=1),
    ),
    (
        b'{"type":"joined","ref":"j","room":"lobby","topic":"t","members":["alice","bob"],'
        b'"history":[' + _MSG + b'],"more":false}',
        Joined(ref="j", room="lobby", topic="t", members=["alice", "bob"], history=[_ROOM_MESSAGE]),
    ),
    (b'{"type":"ok","ref":99}', Ok(ref=99)),
    (
        b'{"type":"member_count","room":"lobby","count":5000}',
        MemberCount(room="lobby", count=5000),
    ),
    (
        b'{"type":"member_joined","room":"lobby","nick":"carol"}',
        MemberJoined(room="lobby", nick="carol"),
    ),
    (
        b'{"type":"member_left","room":"lobby","nick":"carol","reason":"timeout"}',
        MemberLeft(room="lobby", nick="carol", reason=LeaveReason.TIMEOUT),
    ),
    (
        b'{"type":"renamed","ref":3,"old":"alice","new":"al-ice"}',
        Renamed(ref=3, old="alice", new="al-ice"),
    ),
    (
        b'{"type":"topic","room":"lobby","topic":"news","nick":"bob"}',
        TopicChanged(room="lobby", topic="news", nick="bob"),
    ),
    (
        b'{"type":"rooms","rooms":[{"room":"lobby","members":2,"topic":""}],"more":false}',
        RoomList(rooms=[RoomInfo(room="lobby", members=2, topic="")]),
    ),
    (
        b'{"type":"members","room":"lobby","members":["bob"],"more":false}',
        MemberList(room="lobby", members=["bob"]),
    ),
    (
        b'{"type":"history","room":"lobby","messages":[' + _MSG + b'],"more":true}',
        HistoryPage(room="lobby", messages=[_ROOM_MESSAGE], more=True),
    ),
    (b'{"type":"pong","ref":"p","token":"t0"}', PongReply(ref="p", token="t0")),
    (b'{"type":"ping","token":"srv-1"}', ServerPing(token="srv-1")),
    (
        b'{"type":"error","ref":2,"code":"not_in_room","message":"join first","fatal":false}',
        Error(ref=2, code="not_in_room", message="join first"),
    ),
]


def test_examples_cover_every_type() -> None:
    assert {m.type for _, m in COMMAND_EXAMPLES} == COMMAND_TYPES
    assert {m.type for _, m in EVENT_EXAMPLES} == EVENT_TYPES
    assert len(COMMAND_EXAMPLES) == len(COMMAND_TYPES)
    assert len(EVENT_EXAMPLES) == len(EVENT_TYPES)


@pytest.mark.parametrize(
    ("frame", "expected"), COMMAND_EXAMPLES, ids=[m.type for _, m in COMMAND_EXAMPLES]
)
def test_command_example(frame: bytes, expected: Command) -> None:
    parsed = parse_command(frame)
    assert parsed == expected
    assert type(parsed) is type(expected)
    assert json.loads(encode(parsed)) == json.loads(frame)


@pytest.mark.parametrize(
    ("frame", "expected"), EVENT_EXAMPLES, ids=[m.type for _, m in EVENT_EXAMPLES]
)
def test_event_example(frame: bytes, expected: Event) -> None:
    parsed = parse_event(frame)
    assert parsed == expected
    assert type(parsed) is type(expected)
    assert json.loads(encode(parsed)) == json.loads(frame)


def test_same_type_name_means_different_messages_by_direction() -> None:
    frame = b'{"type":"topic","room":"lobby","topic":"news","nick":"bob"}'
    assert isinstance(parse_event(frame), TopicChanged)
    assert parse_command(frame) == SetTopic(room="lobby", topic="news")  # `nick` is ignored
    frame = b'{"type":"ping","token":"x"}'
    assert isinstance(parse_command(frame), Ping)
    assert isinstance(parse_event(frame), ServerPing)


# --- settled in 1.3 (PROTOCOL.md sections 2, 3 and 8) ---------------------------------------


def test_pydantic_wording_never_reaches_the_wire() -> None:
    for frame in [
        b'{"type":"ping","id":1.5}',
        b'{"type":"history","room":"a","limit":"5"}',
        b'{"type":"hello","nick":"a","version":"1.2.3"}',
    ]:
        with pytest.raises(InvalidFields) as info:
            parse_command(frame)
        message = info.value.message
        assert "constrained" not in message and "Input should" not in message, message


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b'{"type":"ping","id":7.0}', "invalid_fields"),
        (b'{"type":"ping","id":1e2}', "invalid_fields"),
        (b'{"type":"ping","id":-0.0}', "invalid_fields"),
        (b'{"type":"history","room":"a","limit":5.0}', "invalid_fields"),
        (b'{"type":"ping","id":9007199254740992}', "invalid_fields"),
        (b'{"type":"ping","id":NaN}', "invalid_json"),
        (b'{"type":"ping","x":NaN}', "invalid_json"),
        (b'{"type":"ping","x":[1,{"y":-Infinity}]}', "invalid_json"),
        (b'\xef\xbb\xbf{"type":"ping"}', "invalid_json"),
        (b'{"type":"ping","token":"\\ud800"}', "invalid_json"),
        (b'{"type":"ping","x":"\\udfff"}', "invalid_json"),
        (b'{"type":"Ping"}', "unknown_type"),
    ],
)
def test_settled_number_and_text_rules(frame: bytes, code: str) -> None:
    with pytest.raises(chatproto.RemoteProtocolError) as info:
        parse_command(frame)
    assert info.value.code == code


def test_settled_accepted_forms() -> None:
    assert parse_command(b'{"type":"ping","id":-0}') == Ping(id=0)
    assert parse_command(b'{"type":"ping","token":"a","token":"b"}') == Ping(token="b")
    assert parse_command(b'{"type":"ping","x":"NaN"}') == Ping()
    assert parse_command(b'{"type":"ping","x":1e400}') == Ping()
    assert parse_command(b'{"type":"ping","id":5}') != parse_command(b'{"type":"ping","id":"5"}')


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (b'{"type":"hello","nick":"a","version":null}', Hello(nick="a")),
        (b'{"type":"history","room":"a","limit":null,"before":null}', History(room="a")),
        (b'{"type":"rooms","after":null,"limit":null}', Rooms()),
        (b'{"type":"members","room":"a","limit":null}', Members(room="a")),
        (b'{"type":"say","room":"a","text":"t","key":null,"id":null}', Say(room="a", text="t")),
    ],
)
def test_null_is_an_absent_optional_field(frame: bytes, expected: Command) -> None:
    assert parse_command(frame) == expected


def test_null_is_absent_in_events_too() -> None:
    frame = b'{"type":"error","code":"x","message":"m","fatal":null,"ref":null}'
    assert parse_event(frame) == Error(code="x", message="m")
    frame = b'{"type":"rooms","rooms":[],"more":null}'
    assert parse_event(frame) == RoomList(rooms=[])


@given(st.one_of(commands, events), st.data())
def test_any_optional_field_as_null_is_the_field_left_out(
    message: Command | Event, data: st.DataObject
) -> None:
    # PROTOCOL.md section 2: null means absent, default applies, in every message.
    optional = [n for n, f in type(message).model_fields.items() if not f.is_required()]
    optional = [n for n in optional if n != "type"]
    if not optional:
        return
    name = data.draw(st.sampled_from(optional), label="field")
    obj = json.loads(encode(message))
    obj[name] = None
    parse = parse_command if isinstance(message, COMMAND_CLASSES) else parse_event
    default = type(message).model_fields[name].get_default()
    assert parse(json.dumps(obj).encode()) == message.model_copy(update={name: default})
