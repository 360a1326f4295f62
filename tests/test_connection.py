"""ServerConnection and ClientConnection: the session rules on both ends."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import hypothesis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatproto import (
    DEFAULT_MAX_FRAME,
    Bye,
    ClientConnection,
    Command,
    DirectMessage,
    Dm,
    Error,
    Event,
    FrameTooLarge,
    Hello,
    History,
    HistoryPage,
    Join,
    Joined,
    LeaveReason,
    Limits,
    LocalProtocolError,
    MemberJoined,
    MemberLeft,
    MemberList,
    Members,
    Nick,
    Ok,
    Part,
    Ping,
    Pong,
    PongReply,
    Register,
    Rejected,
    RemoteProtocolError,
    Renamed,
    RequestId,
    RoomList,
    RoomMessage,
    Rooms,
    Say,
    ServerConnection,
    ServerPing,
    SetTopic,
    State,
    TopicChanged,
    Welcome,
    encode,
)
from chatproto.rules import COMMANDS, EVENTS, Phase, Step, advance
from tests.strategies import COMMAND_STRATEGIES, chunked, commands, events

LIMITS = Limits(
    max_frame=DEFAULT_MAX_FRAME,
    max_text=4000,
    rate=5.0,
    burst=10,
    history=50,
    ping_interval=30.0,
    ping_timeout=10.0,
)


def state(connection: ServerConnection | ClientConnection) -> State:
    """The connection's state, read through a call so that checks in a row are not narrowed."""
    return connection.state


def welcome(ref: RequestId | None = None, *, limits: Limits = LIMITS) -> Welcome:
    return Welcome(
        ref=ref, session="s-1", nick="alice", server="test", version="1.0", limits=limits
    )


# One valid command of each type, with the id it is sent under.
EXAMPLE_COMMANDS: dict[str, Command] = {
    "hello": Hello(id="h", nick="alice"),
    "join": Join(id="c-join", room="lobby"),
    "part": Part(id="c-part", room="lobby"),
    "say": Say(id="c-say", room="lobby", text="hi"),
    "dm": Dm(id="c-dm", to="bob", text="psst"),
    "nick": Nick(id="c-nick", nick="al"),
    "rooms": Rooms(id="c-rooms"),
    "members": Members(id="c-members", room="lobby"),
    "topic": SetTopic(id="c-topic", room="lobby", topic="news"),
    "history": History(id="c-history", room="lobby", after=3),
    "ping": Ping(id="c-ping", token="t"),
    "pong": Pong(id="c-pong", token="t"),
    "register": Register(id="c-register", password="correct horse"),
    "bye": Bye(id="c-bye"),
}


def reply_to(command: Command) -> Event:
    """The reply the protocol defines for `command` (PROTOCOL.md's request/reply table)."""
    ref = command.id
    match command:
        case Hello():
            return welcome(ref)
        case Join(room=room):
            return Joined(ref=ref, room=room, topic="", members=["alice"], history=[])
        case Part() | Register() | Bye():
            return Ok(ref=ref)
        case Say(room=room, text=text):
            return RoomMessage(ref=ref, id=1, room=room, nick="alice", text=text, ts=0)
        case Dm(to=to, text=text):
            return DirectMessage(ref=ref, id=2, nick="alice", to=to, text=text, ts=0)
        case Nick(nick=new):
            return Renamed(ref=ref, old="alice", new=new)
        case Rooms():
            return RoomList(ref=ref, rooms=[])
        case Members(room=room):
            return MemberList(ref=ref, room=room, members=["alice"])
        case SetTopic(room=room, topic=topic):
            return TopicChanged(ref=ref, room=room, topic=topic, nick="alice")
        case History(room=room):
            return HistoryPage(ref=ref, room=room, messages=[], more=False)
        case Ping(token=token):
            return PongReply(ref=ref, token=token)
    raise AssertionError(f"{command.type!r} has no reply")


# A sample of every event class that can carry a `ref`.
REPLY_SAMPLES: list[Event] = [
    reply_to(c) for name, c in EXAMPLE_COMMANDS.items() if name not in ("pong", "bye")
] + [Error(code="no_such_room", message="no")]
EXPECTED_REPLY: dict[str, str] = {
    "hello": "welcome",
    "join": "joined",
    "part": "ok",
    "say": "message",
    "dm": "dm",
    "nick": "renamed",
    "register": "ok",
    "rooms": "rooms",
    "members": "members",
    "topic": "topic",
    "history": "history",
    "ping": "pong",
    "bye": "ok",
}


def open_server(hello_id: RequestId | None = None) -> ServerConnection:
    """A server connection past `hello` and `welcome`."""
    server = ServerConnection()
    assert server.receive_data(encode(Hello(id=hello_id, nick="alice"))) == [
        Hello(id=hello_id, nick="alice")
    ]
    server.send(welcome(hello_id))
    assert state(server) is State.OPEN
    return server


def open_client() -> ClientConnection:
    client = ClientConnection()
    client.send(Hello(id="h", nick="alice"))
    assert client.receive_data(encode(welcome("h"))) == [welcome("h")]
    assert state(client) is State.OPEN
    return client


def rejected(item: Command | Rejected) -> Rejected:
    assert isinstance(item, Rejected), item
    return item


# --- ServerConnection: hello first and once -------------------------------------------


@given(commands.filter(lambda c: not isinstance(c, Hello)))
def test_server_any_command_before_hello_is_fatal(command: Command) -> None:
    server = ServerConnection()
    (item,) = server.receive_data(encode(command) + encode(Hello(nick="late")))
    rej = rejected(item)
    assert rej.error.code == "out_of_order"
    assert rej.error.fatal is True
    assert rej.error.ref == command.id
    assert state(server) is State.CLOSING
    with pytest.raises(LocalProtocolError):
        server.receive_data(b"")


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"nonsense", "invalid_json"),
        (b'{"type": "hello"}', "invalid_fields"),
        (b'{"type": "hi", "nick": "alice"}', "unknown_type"),
        (b"[]", "not_an_object"),
        (b"\xc3\x28", "invalid_utf8"),
    ],
)
def test_server_bad_frame_before_hello_is_fatal(frame: bytes, code: str) -> None:
    server = ServerConnection()
    (item,) = server.receive_data(frame + b"\n" + encode(Hello(nick="alice")))
    rej = rejected(item)
    assert rej.error.code == code
    assert rej.error.fatal is True
    assert state(server) is State.CLOSING


def test_server_hello_opens_the_session() -> None:
    server = ServerConnection()
    assert state(server) is State.AWAIT_HELLO
    assert server.receive_data(encode(Hello(id=1, nick="alice"))) == [Hello(id=1, nick="alice")]
    assert state(server) is State.GREETED
    assert server.outstanding == 1
    server.send(welcome(1))
    assert state(server) is State.OPEN
    assert server.outstanding == 0


def test_server_second_hello_is_rejected_but_not_fatal() -> None:
    server = open_server(hello_id=1)
    items = server.receive_data(
        encode(Hello(id=2, nick="again")) + encode(Join(id=3, room="lobby"))
    )
    rej = rejected(items[0])
    assert rej.error.code == "out_of_order"
    assert rej.error.fatal is False
    assert rej.error.ref == 2
    assert items[1:] == [Join(id=3, room="lobby")]
    assert state(server) is State.OPEN
    server.send(rej.error_event())  # the error answers the rejected hello's id


def test_server_fatal_rejection_is_the_last_item() -> None:
    server = open_server()
    chunk = (
        encode(Join(room="a"))
        + b'{"type": "join", "room": "b"}\n'
        + b"x" * (DEFAULT_MAX_FRAME + 1)
        + b"\n"
        + encode(Join(room="c"))
    )
    items = server.receive_data(chunk)
    assert items[:2] == [Join(room="a"), Join(room="b")]
    rej = rejected(items[-1])
    assert len(items) == 3
    assert rej.error.code == "frame_too_large"
    assert rej.error.fatal is True
    assert state(server) is State.CLOSING
    with pytest.raises(LocalProtocolError):
        server.receive_data(encode(Join(room="d")))
    server.send(rej.error_event())
    assert state(server) is State.CLOSED


def test_server_frame_too_large_arriving_in_pieces() -> None:
    server = ServerConnection(max_frame=64)
    assert server.receive_data(encode(Hello(nick="alice"))) == [Hello(nick="alice")]
    assert server.receive_data(b'{"type":"join","room":"a"}\n{"type":"say"') == [Join(room="a")]
    (item,) = server.receive_data(b"x" * 64)
    assert rejected(item).error.code == "frame_too_large"
    assert state(server) is State.CLOSING


def test_server_frame_too_large_after_bye_is_not_reported() -> None:
    server = ServerConnection(max_frame=64)
    items = server.receive_data(encode(Hello(nick="alice")) + encode(Bye()) + b"x" * 100)
    assert items == [Hello(nick="alice"), Bye()]


def test_server_bye_ends_input() -> None:
    server = open_server()
    items = server.receive_data(
        encode(Join(id=1, room="a")) + encode(Bye(id=2)) + encode(Join(id=3, room="b"))
    )
    assert items == [Join(id=1, room="a"), Bye(id=2)]
    assert state(server) is State.CLOSING
    with pytest.raises(LocalProtocolError):
        server.receive_data(encode(Join(id=4, room="c")))
    # The commands before bye can still be answered, and bye itself with ok.
    server.send(Joined(ref=1, room="a", topic="", members=[], history=[]))
    server.send(Ok(ref=2))
    assert server.outstanding == 0
    assert state(server) is State.CLOSING


def test_server_hello_then_bye_in_one_chunk_can_still_be_welcomed() -> None:
    server = ServerConnection()
    items = server.receive_data(encode(Hello(id=1, nick="alice")) + encode(Bye(id=2)))
    assert items == [Hello(id=1, nick="alice"), Bye(id=2)]
    assert state(server) is State.CLOSING
    with pytest.raises(LocalProtocolError):
        server.send(Ok(ref=2))  # not before welcome
    server.send(welcome(1))
    server.send(Ok(ref=2))
    assert server.outstanding == 0
    with pytest.raises(LocalProtocolError):
        server.send(welcome())  # still only once


def test_server_duplicate_outstanding_id() -> None:
    server = open_server()
    items = server.receive_data(
        encode(Join(id=5, room="a"))
        + encode(Say(id=5, room="a", text="x"))
        + encode(Say(id="5", room="a", text="y"))  # "5" is not 5
    )
    assert items[0] == Join(id=5, room="a")
    rej = rejected(items[1])
    assert rej.error.code == "duplicate_id"
    assert rej.error.fatal is False
    assert rej.error.ref is None  # 5 belongs to the join, which the error must not settle
    assert items[2] == Say(id="5", room="a", text="y")
    assert server.outstanding == 2
    server.send(rej.error_event())
    server.send(Joined(ref=5, room="a", topic="", members=[], history=[]))
    # Once answered, the id is free again.
    assert server.receive_data(encode(Part(id=5, room="a"))) == [Part(id=5, room="a")]


def test_server_bad_frame_costs_only_itself() -> None:
    server = open_server()
    items = server.receive_data(
        encode(Join(id=1, room="a"))
        + b"{not json}\n"
        + b'{"type": "say", "id": 2, "room": "a"}\n'
        + b'{"type": "shout", "id": 3}\r\n'
        + encode(Join(id=4, room="b"))
    )
    assert len(items) == 5
    assert items[0] == Join(id=1, room="a")
    assert items[4] == Join(id=4, room="b")
    codes = [rejected(i).error.code for i in items[1:4]]
    assert codes == ["invalid_json", "invalid_fields", "unknown_type"]
    assert [rejected(i).error.ref for i in items[1:4]] == [None, 2, 3]
    assert all(not rejected(i).error.fatal for i in items[1:4])
    assert state(server) is State.OPEN
    # A rejected frame's id is held for its error, and only for an error.
    with pytest.raises(LocalProtocolError):
        server.send(RoomMessage(ref=2, id=1, room="a", nick="alice", text="t", ts=0))
    server.send(rejected(items[2]).error_event())
    server.send(rejected(items[3]).error_event())
    assert server.outstanding == 2


def test_rejected_error_event_carries_code_message_fatal_and_ref() -> None:
    server = open_server()
    (item,) = server.receive_data(b'{"type": "join", "room": "BAD", "id": "j7"}\n')
    rej = rejected(item)
    event = rej.error_event()
    assert event == Error(code="invalid_fields", message=rej.error.message, fatal=False, ref="j7")
    assert "room" in event.message
    assert json.loads(server.send(event)) == {
        "type": "error",
        "code": "invalid_fields",
        "message": rej.error.message,
        "fatal": False,
        "ref": "j7",
    }
    fatal = ServerConnection()
    (item,) = fatal.receive_data(encode(Rooms(id=4)))
    event = rejected(item).error_event()
    assert (event.code, event.fatal, event.ref) == ("out_of_order", True, 4)
    assert "hello" in event.message


# --- ServerConnection.send -------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        Ok(),
        MemberJoined(room="a", nick="b"),
        ServerPing(token="t"),
        RoomList(rooms=[]),
        Error(code="rate_limited", message="slow down"),
    ],
    ids=lambda e: e.type,
)
def test_server_no_events_before_welcome_but_a_fatal_error(event: Event) -> None:
    fresh = ServerConnection()
    with pytest.raises(LocalProtocolError):
        fresh.send(event)
    greeted = ServerConnection()
    greeted.receive_data(encode(Hello(nick="alice")))
    with pytest.raises(LocalProtocolError):
        greeted.send(event)
    greeted.send(Error(code="nick_in_use", message="taken", fatal=True))
    assert state(greeted) is State.CLOSED
    fresh.send(Error(code="server_full", message="full", fatal=True))
    assert state(fresh) is State.CLOSED


def test_server_no_events_after_fatal_rejection_before_hello() -> None:
    server = ServerConnection()
    (item,) = server.receive_data(encode(Join(room="a")))
    assert rejected(item).error.fatal
    for event in (Ok(), MemberJoined(room="a", nick="b"), welcome()):
        with pytest.raises(LocalProtocolError):
            server.send(event)
    server.send(rejected(item).error_event())
    assert state(server) is State.CLOSED


def test_server_welcome_only_once_and_only_after_hello() -> None:
    server = ServerConnection()
    with pytest.raises(LocalProtocolError):
        server.send(welcome())
    server.receive_data(encode(Hello(nick="alice")))
    server.send(welcome())
    with pytest.raises(LocalProtocolError):
        server.send(welcome())


def test_server_nothing_after_close() -> None:
    server = open_server()
    server.close()
    assert state(server) is State.CLOSED
    with pytest.raises(LocalProtocolError):
        server.send(Error(code="shutdown", message="bye", fatal=True))
    with pytest.raises(LocalProtocolError):
        server.receive_data(b"")


def test_server_fatal_error_closes() -> None:
    server = open_server()
    server.send(Error(code="shutdown", message="going down", fatal=True))
    assert state(server) is State.CLOSED
    with pytest.raises(LocalProtocolError):
        server.send(MemberJoined(room="a", nick="b"))


def test_server_events_without_ref_need_no_request() -> None:
    server = open_server()
    server.send(MemberJoined(room="a", nick="b"))
    server.send(MemberLeft(room="a", nick="b", reason=LeaveReason.QUIT))
    server.send(ServerPing(token="x"))
    server.send(RoomMessage(id=1, room="a", nick="b", text="t", ts=0))
    server.send(Error(code="slow_consumer", message="m"))


@pytest.mark.parametrize("command_type", sorted(EXPECTED_REPLY))
@pytest.mark.parametrize("reply", REPLY_SAMPLES, ids=lambda e: type(e).__name__)
def test_server_ref_must_answer_with_the_right_reply(command_type: str, reply: Event) -> None:
    command = EXAMPLE_COMMANDS[command_type]
    server = ServerConnection()
    if isinstance(command, Hello):
        server.receive_data(encode(command))
    else:
        server.receive_data(encode(Hello(nick="alice")))
        server.send(welcome())
        assert server.receive_data(encode(command)) == [command]
    answer = reply.model_copy(update={"ref": command.id})
    allowed = reply.type in (EXPECTED_REPLY[command_type], "error")
    if isinstance(reply, Error) and state(server) is State.GREETED:
        answer = answer.model_copy(update={"fatal": True})  # before welcome errors are fatal
    if allowed:
        server.send(answer)
        assert server.outstanding == 0
        with pytest.raises(LocalProtocolError):
            server.send(answer)  # each request is answered once
    else:
        with pytest.raises(LocalProtocolError):
            server.send(answer)
        assert server.outstanding == 1


def test_server_pong_id_is_ignored() -> None:
    server = open_server()
    assert server.receive_data(encode(Join(id=3, room="a")) + encode(Pong(id=3, token="k"))) == [
        Join(id=3, room="a"),
        Pong(id=3, token="k"),
    ]
    assert server.outstanding == 1  # only the join
    server.send(Joined(ref=3, room="a", topic="", members=[], history=[]))
    assert server.outstanding == 0


def test_server_ref_to_nothing_is_refused() -> None:
    server = open_server()
    with pytest.raises(LocalProtocolError):
        server.send(Ok(ref=42))
    with pytest.raises(LocalProtocolError):
        server.send(Error(ref=42, code="x", message="m"))
    # a pong's id is never outstanding: nothing answers a pong
    assert server.receive_data(encode(Pong(id=9, token="t"))) == [Pong(id=9, token="t")]
    assert server.outstanding == 0
    with pytest.raises(LocalProtocolError):
        server.send(PongReply(ref=9, token="t"))


# --- ServerConnection against a model of the rules ----------------------------------------------

ID_POOL: st.SearchStrategy[RequestId | None] = st.sampled_from([None, None, 0, 1, 2, "1", "a"])


@dataclass(frozen=True)
class BadFrame:
    """A frame that breaks a rule, with the code it should earn."""

    raw: bytes
    code: str
    id: RequestId | None = None

    def wire(self) -> bytes:
        return self.raw + b"\n"


def _with_id(kind: str, extra: dict[str, object], code: str) -> st.SearchStrategy[BadFrame]:
    def build(rid: RequestId | None) -> BadFrame:
        obj: dict[str, object] = {"type": kind, **extra}
        if rid is not None:
            obj["id"] = rid
        return BadFrame(json.dumps(obj).encode(), code, rid)

    return ID_POOL.map(build)


bad_frames: st.SearchStrategy[BadFrame] = st.one_of(
    _with_id("no_such_type", {}, "unknown_type"),
    _with_id("join", {"room": "Not A Room"}, "invalid_fields"),
    _with_id("history", {"room": "a", "before": 2, "after": 1}, "invalid_fields"),
    st.just(BadFrame(b"{not json", "invalid_json")),
    st.just(BadFrame(b"[1, 2]", "not_an_object")),
    st.just(BadFrame(b"\xff\xfe", "invalid_utf8")),
    st.just(BadFrame(b"x" * (DEFAULT_MAX_FRAME + 1), "frame_too_large")),
)
pooled_commands: st.SearchStrategy[Command] = st.builds(
    lambda c, rid: c.model_copy(update={"id": rid}), commands, ID_POOL
)
hellos: st.SearchStrategy[Command] = st.builds(
    lambda c, rid: c.model_copy(update={"id": rid}), COMMAND_STRATEGIES["hello"], ID_POOL
)
Item = Command | BadFrame


def _item(kind: int) -> st.SearchStrategy[Item]:
    return bad_frames if kind == 0 else pooled_commands


# Mostly commands: one item in six is a bad frame.
items: st.SearchStrategy[Item] = st.integers(0, 5).flatmap(_item)


@dataclass
class RulesModel:
    """What the protocol says a server connection must make of each frame."""

    greeted: bool = False
    ended: bool = False
    outstanding: set[RequestId] = field(default_factory=set)

    def expect(self, item: Item) -> Command | tuple[str, bool, RequestId | None]:
        """The command itself if accepted, else (code, fatal, ref)."""
        if isinstance(item, BadFrame):
            fatal = not self.greeted or item.code == "frame_too_large"
            return self._reject(item.code, fatal, item.id)
        if not self.greeted:
            if not isinstance(item, Hello):
                return self._reject("out_of_order", True, item.id)
            self.greeted = True
        elif isinstance(item, Hello):
            return self._reject("out_of_order", False, item.id)
        if item.id is not None and isinstance(item, Pong):
            return item  # a pong's id is ignored: never outstanding, never a duplicate
        if item.id is not None and item.id in self.outstanding:
            return self._reject("duplicate_id", False, None)
        if item.id is not None:
            self.outstanding.add(item.id)
        if isinstance(item, Bye):
            self.ended = True
        return item

    def _reject(
        self, code: str, fatal: bool, rid: RequestId | None
    ) -> tuple[str, bool, RequestId | None]:
        ref = rid if rid is not None and rid not in self.outstanding else None
        if ref is not None:
            self.outstanding.add(ref)  # held for the error that answers it
        if fatal:
            self.ended = True
        return (code, fatal, ref)


@settings(max_examples=150)
@given(
    start_with_hello=st.sampled_from([True, True, True, False]),
    first=hellos,
    batches=st.lists(st.lists(items, min_size=1, max_size=5), min_size=1, max_size=6),
    data=st.data(),
)
def test_server_connection_follows_the_rules(
    start_with_hello: bool,
    first: Command,
    batches: list[list[Item]],
    data: st.DataObject,
) -> None:
    if start_with_hello:
        batches = [[first, *batches[0]], *batches[1:]]
    server = ServerConnection()
    model = RulesModel()
    pending: list[Command] = []  # accepted requests the test has not answered yet

    def answer(command: Command) -> None:
        assert command.id is not None
        if data.draw(st.booleans(), label="answer with an error"):
            server.send(Error(ref=command.id, code="no_such_room", message="no"))
        else:
            server.send(reply_to(command))
        model.outstanding.discard(command.id)

    for batch in batches:
        if model.ended:
            break
        expected: list[Command | tuple[str, bool, RequestId | None]] = []
        for item in batch:
            expected.append(model.expect(item))
            if model.ended:
                break
        wire = b"".join(i.wire() if isinstance(i, BadFrame) else encode(i) for i in batch)
        received: list[Command | Rejected] = []
        for chunk in data.draw(chunked(wire, bytewise_limit=512), label="chunks"):
            if state(server) is State.CLOSING:
                break
            received += server.receive_data(chunk)
        got = [
            (r.error.code.value, r.error.fatal, r.error.ref) if isinstance(r, Rejected) else r
            for r in received
        ]
        assert got == expected
        for outcome in got:
            hypothesis.event(
                outcome[0] if isinstance(outcome, tuple) else f"accepted {outcome.type}"
            )
        # The server side of the test answers as a server would, in order.
        for got_item in received:
            if isinstance(got_item, Rejected):
                server.send(got_item.error_event())
                if got_item.error.ref is not None:
                    model.outstanding.discard(got_item.error.ref)
            elif isinstance(got_item, Hello):
                server.send(welcome(got_item.id))
                if got_item.id is not None:
                    model.outstanding.discard(got_item.id)
            elif got_item.id is not None and not isinstance(got_item, Pong):
                pending.append(got_item)
        keep = []
        for command in pending:
            if state(server) is not State.CLOSED and data.draw(st.booleans(), label="answer now"):
                answer(command)
            else:
                keep.append(command)
        pending = keep
        if state(server) is not State.CLOSED:
            assert server.outstanding == len(model.outstanding)
    if model.ended:
        assert state(server) in (State.CLOSING, State.CLOSED)
        with pytest.raises(LocalProtocolError):
            server.receive_data(encode(Rooms()))
        if state(server) is State.CLOSING:
            for command in pending:
                answer(command)
            assert server.outstanding == 0
    else:
        assert state(server) is (State.OPEN if model.greeted else State.AWAIT_HELLO)


# --- ClientConnection ---------------------------------------------------------------------------


@given(commands.filter(lambda c: not isinstance(c, Hello)))
def test_client_must_send_hello_first(command: Command) -> None:
    client = ClientConnection()
    with pytest.raises(LocalProtocolError):
        client.send(command)
    assert state(client) is State.AWAIT_HELLO
    assert client.send(Hello(nick="alice")) == encode(Hello(nick="alice"))
    assert state(client) is State.HELLO_SENT


def test_client_hello_only_once() -> None:
    client = open_client()
    with pytest.raises(LocalProtocolError):
        client.send(Hello(nick="again"))


def test_client_may_pipeline_before_welcome() -> None:
    client = ClientConnection()
    client.send(Hello(id=1, nick="alice"))
    client.send(Join(id=2, room="lobby"))
    assert client.outstanding == 2
    events = client.receive_data(
        encode(welcome(1)) + encode(Joined(ref=2, room="lobby", topic="", members=[], history=[]))
    )
    assert [e.type for e in events] == ["welcome", "joined"]
    assert client.outstanding == 0


def test_client_cannot_send_after_bye() -> None:
    client = open_client()
    client.send(Bye(id="b"))
    assert state(client) is State.CLOSING
    with pytest.raises(LocalProtocolError):
        client.send(Rooms())
    with pytest.raises(LocalProtocolError):
        client.send(Bye())
    assert client.receive_data(encode(Ok(ref="b"))) == [Ok(ref="b")]
    assert client.outstanding == 0


def test_client_hello_then_bye_before_welcome() -> None:
    client = ClientConnection()
    client.send(Hello(id=1, nick="alice"))
    client.send(Bye(id=2))
    assert state(client) is State.CLOSING
    assert client.receive_data(encode(welcome(1)) + encode(Ok(ref=2))) == [welcome(1), Ok(ref=2)]
    assert client.outstanding == 0


def test_client_cannot_reuse_an_outstanding_id() -> None:
    client = open_client()
    client.send(Join(id=7, room="a"))
    with pytest.raises(LocalProtocolError):
        client.send(Say(id=7, room="a", text="x"))
    client.send(Say(id="7", room="a", text="x"))  # a different id
    client.receive_data(encode(Error(ref=7, code="no_such_room", message="m")))
    client.send(Say(id=7, room="a", text="x"))  # answered, so free again
    # pong ids are never outstanding, so they may repeat, even an outstanding one
    client.send(Pong(id=8))
    client.send(Pong(id=8))
    client.send(Pong(id=7))
    assert client.outstanding == 2


def test_client_ref_answering_nothing_is_a_remote_error() -> None:
    client = open_client()
    with pytest.raises(RemoteProtocolError) as info:
        client.receive_data(encode(Ok(ref="never-sent")))
    assert not isinstance(info.value, LocalProtocolError)
    client = open_client()
    client.send(Rooms(id=1))
    client.receive_data(encode(RoomList(ref=1, rooms=[])))
    with pytest.raises(RemoteProtocolError):
        client.receive_data(encode(RoomList(ref=1, rooms=[])))  # answered twice


def test_client_wrong_reply_type_is_a_remote_error() -> None:
    client = open_client()
    client.send(Say(id="s", room="a", text="x"))
    with pytest.raises(RemoteProtocolError):
        client.receive_data(encode(Joined(ref="s", room="a", topic="", members=[], history=[])))


def test_client_skips_unknown_event_types() -> None:
    client = open_client()
    events = client.receive_data(
        encode(MemberJoined(room="a", nick="b"))
        + b'{"type": "reaction", "ref": "nothing", "emoji": "+1"}\n'
        + encode(ServerPing(token="t"))
    )
    assert events == [MemberJoined(room="a", nick="b"), ServerPing(token="t")]


def test_client_bad_event_is_a_remote_error() -> None:
    client = open_client()
    with pytest.raises(RemoteProtocolError) as info:
        client.receive_data(b'{"type": "member_joined", "room": "A B", "nick": "b"}\n')
    assert info.value.code == "invalid_fields"
    with pytest.raises(RemoteProtocolError) as info:
        client.receive_data(b"{oops\n")
    assert info.value.code == "invalid_json"


def test_client_events_before_welcome() -> None:
    client = ClientConnection()
    with pytest.raises(RemoteProtocolError):
        client.receive_data(encode(MemberJoined(room="a", nick="b")))  # nothing sent yet
    client = ClientConnection()
    client.send(Hello(nick="alice"))
    with pytest.raises(RemoteProtocolError) as info:
        client.receive_data(encode(MemberJoined(room="a", nick="b")))
    assert info.value.code == "out_of_order"
    client = ClientConnection()
    with pytest.raises(RemoteProtocolError):
        client.receive_data(encode(welcome()))  # welcome without hello
    client = open_client()
    with pytest.raises(RemoteProtocolError):
        client.receive_data(encode(welcome()))  # a second welcome


def test_client_fatal_error_closes() -> None:
    client = ClientConnection()
    client.send(Hello(id=1, nick="alice"))
    (event,) = client.receive_data(
        encode(Error(ref=1, code="nick_in_use", message="taken", fatal=True))
    )
    assert isinstance(event, Error)
    assert state(client) is State.CLOSED
    assert client.outstanding == 0
    assert client.receive_data(b"") == []
    with pytest.raises(RemoteProtocolError):
        client.receive_data(encode(MemberJoined(room="a", nick="b")))
    with pytest.raises(LocalProtocolError):
        client.send(Rooms())


def test_client_non_fatal_error_keeps_the_session() -> None:
    client = open_client()
    client.send(Join(id=1, room="a"))
    client.receive_data(encode(Error(ref=1, code="rate_limited", message="later")))
    assert state(client) is State.OPEN


def test_client_takes_max_frame_from_welcome() -> None:
    big = MemberList(room="a", members=["m" * 20] * 30)  # about 700 bytes
    small_limits = LIMITS.model_copy(update={"max_frame": 256})
    client = ClientConnection()
    client.send(Hello(id=1, nick="alice"))
    client.receive_data(encode(welcome(1, limits=small_limits)))
    with pytest.raises(FrameTooLarge):
        client.receive_data(encode(big))
    # and the other way: a limit above the initial one lets bigger frames in
    large_limits = LIMITS.model_copy(update={"max_frame": 4096})
    client = ClientConnection(max_frame=512)
    client.send(Hello(id=1, nick="alice"))
    client.receive_data(encode(welcome(1, limits=large_limits)))
    assert client.receive_data(encode(big)) == [big]


@given(st.lists(events, max_size=5))
def test_client_skips_nothing_it_knows(sent: list[Event]) -> None:
    client = open_client()
    plain = [e.model_copy(update={"ref": None}) if hasattr(e, "ref") else e for e in sent]
    plain = [e for e in plain if not isinstance(e, Welcome)]
    plain = [e.model_copy(update={"fatal": False}) if isinstance(e, Error) else e for e in plain]
    assert client.receive_data(b"".join(encode(e) for e in plain)) == plain


# --- both ends together ---------------------------------------------------------------------------


class Pipe:
    """Carries bytes between a client and a server connection, in given chunk sizes."""

    def __init__(self, chunk: int) -> None:
        self.client = ClientConnection()
        self.server = ServerConnection()
        self.chunk = chunk

    def _pieces(self, data: bytes) -> list[bytes]:
        return [data[i : i + self.chunk] for i in range(0, len(data), self.chunk)]

    def to_server(self, *commands: Command) -> list[Command | Rejected]:
        wire = b"".join(self.client.send(c) for c in commands)
        return [item for piece in self._pieces(wire) for item in self.server.receive_data(piece)]

    def to_client(self, *events: Event) -> list[Event]:
        wire = b"".join(self.server.send(e) for e in events)
        return [event for piece in self._pieces(wire) for event in self.client.receive_data(piece)]


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_a_whole_conversation(chunk: int) -> None:
    pipe = Pipe(chunk)
    hello = Hello(id=1, nick="alice", client="test 1.0")
    assert pipe.to_server(hello) == [hello]
    assert pipe.to_client(welcome(1)) == [welcome(1)]
    assert state(pipe.client) is state(pipe.server) is State.OPEN

    join, say = Join(id=2, room="lobby"), Say(id=3, room="lobby", text="hello\nworld")
    assert pipe.to_server(join, say) == [join, say]
    joined = Joined(ref=2, room="lobby", topic="", members=["alice", "bob"], history=[])
    echo = RoomMessage(ref=3, id=10, room="lobby", nick="alice", text="hello\nworld", ts=1)
    others: list[Event] = [
        MemberJoined(room="lobby", nick="carol"),
        RoomMessage(id=11, room="lobby", nick="bob", text="hi", ts=2),
        ServerPing(token="p1"),
    ]
    assert pipe.to_client(joined, echo, *others) == [joined, echo, *others]
    assert pipe.to_server(Pong(token="p1")) == [Pong(token="p1")]

    requests: list[Command] = [
        Dm(id=4, to="bob", text="psst"),
        Nick(id=5, nick="alice2"),
        SetTopic(id=6, room="lobby", topic="news"),
        History(id=7, room="lobby", before=11, limit=10),
        Rooms(id=8),
        Members(id=9, room="lobby"),
        Ping(id=10, token="c1"),
        Join(id=11, room="nowhere-else"),
        Part(id=12, room="lobby"),
    ]
    assert pipe.to_server(*requests) == requests
    assert pipe.client.outstanding == pipe.server.outstanding == len(requests)
    replies = [reply_to(r) for r in requests[:-2]] + [
        Error(ref=11, code="rate_limited", message="slow down"),
        Ok(ref=12),
    ]
    assert pipe.to_client(*reversed(replies)) == list(reversed(replies))  # any order
    assert pipe.client.outstanding == pipe.server.outstanding == 0

    bad = b'{"type": "say", "id": 13, "room": "lobby", "text": ""}\n'
    (item,) = pipe.server.receive_data(bad)
    error = rejected(item).error_event()
    with pytest.raises(RemoteProtocolError):  # the client never sent id 13
        pipe.client.receive_data(pipe.server.send(error))

    pipe = Pipe(chunk)
    pipe.to_server(Hello(nick="bob"))
    pipe.to_client(welcome())
    assert pipe.to_server(Bye(id="end")) == [Bye(id="end")]
    assert state(pipe.client) is state(pipe.server) is State.CLOSING
    assert pipe.to_client(MemberLeft(room="lobby", nick="x", reason=LeaveReason.LOST)) == [
        MemberLeft(room="lobby", nick="x", reason=LeaveReason.LOST)
    ]
    assert pipe.to_client(Ok(ref="end")) == [Ok(ref="end")]
    assert pipe.client.outstanding == pipe.server.outstanding == 0
    pipe.server.close()
    assert state(pipe.server) is State.CLOSED


def test_a_refused_client_hears_why() -> None:
    pipe = Pipe(5)
    assert pipe.to_server(Hello(id="h", nick="alice")) == [Hello(id="h", nick="alice")]
    refusal = Error(ref="h", code="nick_in_use", message="alice is taken", fatal=True)
    assert pipe.to_client(refusal) == [refusal]
    assert state(pipe.client) is state(pipe.server) is State.CLOSED


@given(st.data())
def test_every_chunking_of_a_conversation(data: st.DataObject) -> None:
    client, server = ClientConnection(), ServerConnection()
    sent: list[Command] = [
        Hello(id=0, nick="alice"),
        Join(id=1, room="lobby"),
        Say(id=2, room="lobby", text="x" * 300),
        Bye(id=3),
    ]
    wire = b"".join(client.send(c) for c in sent)
    received: list[Command | Rejected] = []
    for chunk in data.draw(chunked(wire)):
        if state(server) is State.CLOSING:  # input ended with the bye
            assert not chunk
            continue
        received += server.receive_data(chunk)
    assert received == sent
    replies = [reply_to(c) for c in sent]
    back = b"".join(server.send(r) for r in replies)
    got = [e for chunk in data.draw(chunked(back)) for e in client.receive_data(chunk)]
    assert got == replies
    assert client.outstanding == server.outstanding == 0


def test_client_stops_at_a_fatal_error() -> None:
    client = open_client()
    fatal = encode(Error(code="shutdown", message="bye", fatal=True))
    late = encode(MemberJoined(room="lobby", nick="late"))
    assert client.receive_data(fatal + late) == [Error(code="shutdown", message="bye", fatal=True)]
    assert state(client) is State.CLOSED


# --- 1.3: fixed error texts, no frame over max_frame, blank lines, the rules table -----------

_MARK = st.text(alphabet="XYZQ\u00e9\u6f22\U0001f600!?#", min_size=3, max_size=40)


@given(_MARK, st.sampled_from(["type", "value", "key", "junk", "id"]))
def test_error_messages_never_contain_the_clients_bytes(mark: str, where: str) -> None:
    server = open_server()
    quoted = json.dumps(mark)
    frame = {
        "type": '{"type":' + quoted + ',"id":"r"}',
        "value": '{"type":"join","room":' + quoted + ',"id":"r"}',
        "key": '{"type":"join",' + quoted + ":1}",
        "junk": mark + "{",
        "id": '{"type":"history","room":"a","limit":0,"id":' + quoted + "}",
    }[where]
    (item,) = server.receive_data(frame.encode() + b"\n")
    assert isinstance(item, Rejected)
    sent = server.send(item.error_event())
    assert mark not in item.error.message
    assert len(sent) < 200


def test_a_64_kib_invalid_frame_gets_a_short_error() -> None:
    server = open_server()
    (item,) = server.receive_data(b'{"type":"' + b"x" * 65_000 + b'","id":"r"}\n')
    assert isinstance(item, Rejected) and item.error.code == "unknown_type"
    frame = server.send(item.error_event())
    assert len(frame) < 200 and b"xxxx" not in frame
    (item,) = server.receive_data(b'{"type":"say","room":"' + b"y" * 65_000 + b'","id":"s"}\n')
    assert isinstance(item, Rejected)
    assert item.error.message == "invalid field 'room' in 'say'"


def test_server_refuses_to_send_a_frame_over_max_frame() -> None:
    server = ServerConnection(max_frame=300)
    server.receive_data(b'{"type":"hello","nick":"alice","id":1}\n')
    server.send(welcome(1))
    server.receive_data(b'{"type":"members","room":"a","id":2}\n')
    big = MemberList(ref=2, room="a", members=[f"n{i}" for i in range(200)])
    with pytest.raises(LocalProtocolError) as info:
        server.send(big)
    assert info.value.code == "frame_too_large"
    # Nothing changed: the request is still owed, and a reply that fits goes.
    assert server.outstanding == 1
    assert server.send(MemberList(ref=2, room="a", members=["n1"]))


def test_client_refuses_to_send_a_frame_over_max_frame() -> None:
    client = ClientConnection(max_frame=100)
    with pytest.raises(LocalProtocolError):
        client.send(Hello(nick="alice", client="c" * 64, password="p" * 60))
    assert state(client) is State.AWAIT_HELLO


@pytest.mark.parametrize("blank", [b"\n", b"\r\n", b"   \n", b"\t \r\n"])
def test_blank_lines_are_not_frames_and_never_answered(blank: bytes) -> None:
    fresh = ServerConnection()
    assert fresh.receive_data(blank * 3) == []
    assert state(fresh) is State.AWAIT_HELLO  # not fatal before hello: nothing happened
    server = open_server()
    assert server.receive_data(blank + b'{"type":"ping","id":1}\n' + blank) == [Ping(id=1)]
    client = open_client()
    assert client.receive_data(blank) == []


def test_nan_in_an_unknown_field_is_invalid_json() -> None:
    server = open_server()
    items = server.receive_data(
        b'{"type":"ping","id":1,"x":NaN}\n{"type":"ping","id":2,"x":"NaN"}\n'
    )
    first, second = items
    assert isinstance(first, Rejected) and first.error.code == "invalid_json"
    assert first.error.ref is None  # not JSON, so no id could be read
    assert second == Ping(id=2)


def test_id_5_and_id_string_5_are_different_requests() -> None:
    server = open_server()
    assert server.receive_data(b'{"type":"ping","id":5}\n{"type":"ping","id":"5"}\n') == [
        Ping(id=5),
        Ping(id="5"),
    ]
    assert server.outstanding == 2


def test_rules_tables_read_like_the_spec() -> None:
    idle, greeted, open_, done = Phase.IDLE, Phase.GREETED, Phase.OPEN, Phase.DONE
    # hello first; it makes a welcome due.
    assert advance(idle, idle, Step.HELLO) == (open_, greeted)
    assert advance(idle, idle, Step.COMMAND) is None
    # No non-fatal error and no other event before welcome.
    assert advance(open_, greeted, Step.ERROR) is None
    assert advance(open_, greeted, Step.EVENT) is None
    assert advance(open_, greeted, Step.WELCOME) == (open_, open_)
    # Replies owed after bye still go; nothing after a fatal error.
    assert advance(done, open_, Step.EVENT) == (done, open_)
    assert advance(open_, open_, Step.FATAL) == (done, done)
    assert advance(done, done, Step.EVENT) is None
    # Every phase of each stream can be left for good.
    for table in (COMMANDS, EVENTS):
        assert {p for (p, _) in table} <= {idle, greeted, open_}


def test_server_refuses_a_long_error_message() -> None:
    server = open_server()
    with pytest.raises(LocalProtocolError):
        server.send(Error(code="internal_error", message="x" * 201))
    assert server.send(Error(code="internal_error", message="x" * 200))
