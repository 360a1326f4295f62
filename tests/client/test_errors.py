"""Every way a request can fail, and the typed exception (with the right code) for it."""

from __future__ import annotations

import socket

import pytest

from chatclient import (
    ChatError,
    Client,
    ClientClosed,
    ConnectionLost,
    Disconnected,
    InvalidRequest,
    RequestTimeout,
)
from chatproto import Error, ErrorCode, Ping
from chatserver.server import ChatServer
from tests.client.conftest import ClientFactory, ServerFactory
from tests.client.fakes import ScriptedServer, hang_up, silent


def code_of(excinfo: pytest.ExceptionInfo[ChatError]) -> str:
    return excinfo.value.code


def test_nick_in_use_at_connect(make_client: ClientFactory) -> None:
    make_client("alice")
    late = make_client("ALICE", connect=False)  # nicks are unique case-insensitively
    with pytest.raises(ChatError) as excinfo:
        late.connect()
    assert code_of(excinfo) == ErrorCode.NICK_IN_USE and excinfo.value.fatal
    assert not late.connected


def test_server_full(make_server: ServerFactory, make_client: ClientFactory) -> None:
    full = make_server(max_clients=1)
    make_client("first", port=full.address[1])
    with pytest.raises(ChatError) as excinfo:
        make_client("second", port=full.address[1])
    assert code_of(excinfo) == ErrorCode.SERVER_FULL


def test_not_in_room(make_client: ClientFactory) -> None:
    alice = make_client("alice")
    for call in (
        lambda: alice.say("dev", "x"),
        lambda: alice.part("dev"),
        lambda: alice.topic("dev", "x"),
    ):
        with pytest.raises(ChatError) as excinfo:
            call()
        assert code_of(excinfo) == ErrorCode.NOT_IN_ROOM
    assert alice.ping().type == "pong"  # non-fatal: still connected


def test_no_such_room_and_no_such_nick(make_client: ClientFactory) -> None:
    alice = make_client("alice")
    with pytest.raises(ChatError) as excinfo:
        alice.members("nowhere")
    assert code_of(excinfo) == ErrorCode.NO_SUCH_ROOM
    with pytest.raises(ChatError) as excinfo:
        alice.history("nowhere")
    assert code_of(excinfo) == ErrorCode.NO_SUCH_ROOM
    with pytest.raises(ChatError) as excinfo:
        alice.dm("nobody", "hello?")
    assert code_of(excinfo) == ErrorCode.NO_SUCH_NICK


def test_rename_to_a_taken_nick(make_client: ClientFactory) -> None:
    alice = make_client("alice")
    make_client("bob")
    with pytest.raises(ChatError) as excinfo:
        alice.nick("Bob")
    assert code_of(excinfo) == ErrorCode.NICK_IN_USE and not excinfo.value.fatal
    assert alice.nickname == "alice"


def test_invalid_requests_are_refused_before_sending(make_client: ClientFactory) -> None:
    alice = make_client("alice")
    for call in (
        lambda: alice.join("Not A Room"),
        lambda: alice.say("lobby", ""),
        lambda: alice.say("lobby", "bell\x07"),
        lambda: alice.dm("9lives", "x"),
        lambda: alice.history("lobby", before=5, after=3),
        lambda: alice.history("lobby", limit=101),
    ):
        with pytest.raises(InvalidRequest) as excinfo:
            call()
        assert code_of(excinfo) == ErrorCode.INVALID_FIELDS
    with pytest.raises(InvalidRequest):
        Client("no spaces allowed")
    assert alice.ping().type == "pong"


def test_server_side_invalid_fields(make_server: ServerFactory, make_client: ClientFactory) -> None:
    short = make_server(max_text=10)
    alice = make_client("alice", port=short.address[1])
    alice.join("lobby")
    with pytest.raises(ChatError) as excinfo:
        alice.say("lobby", "longer than ten characters")
    assert code_of(excinfo) == ErrorCode.INVALID_FIELDS
    assert not isinstance(excinfo.value, InvalidRequest)  # the server said it


def test_rate_limited_without_pacing(
    make_server: ServerFactory, make_client: ClientFactory
) -> None:
    strict = make_server(rate=0.001, burst=3)
    alice = make_client("alice", port=strict.address[1], pace=False)
    for _ in range(3):
        alice.ping()
    with pytest.raises(ChatError) as excinfo:
        alice.ping()
    assert code_of(excinfo) == ErrorCode.RATE_LIMITED


def test_pacing_avoids_rate_limited(make_server: ServerFactory, make_client: ClientFactory) -> None:
    paced = make_server(rate=50.0, burst=4)
    alice = make_client("alice", port=paced.address[1])
    # Twenty requests at once would overrun a burst of 4; pacing spreads them.
    futures = [alice.submit(alice_ping) for alice_ping in [_ping()] * 20]
    assert [f.result(5).type for f in futures] == ["pong"] * 20


def _ping() -> Ping:
    return Ping(token="p")


def test_timeout_when_the_server_does_not_answer() -> None:
    with ScriptedServer(silent) as fake:
        client = Client("alice", port=fake.port)
        try:
            client.connect(timeout=5)
            with pytest.raises(RequestTimeout):
                client.ping(timeout=0.2)
            with pytest.raises(TimeoutError):  # RequestTimeout is a TimeoutError
                client.members("lobby", timeout=0.05)
        finally:
            client.close(timeout=0.1)


def test_connection_lost_while_waiting() -> None:
    with ScriptedServer(hang_up) as fake:
        client = Client("alice", port=fake.port)
        try:
            client.connect(timeout=5)
            with pytest.raises(ConnectionLost) as excinfo:
                client.ping(timeout=5)
            assert not isinstance(excinfo.value, ClientClosed)
            with pytest.raises(ConnectionLost):
                client.ping()  # no reconnect policy: the client has ended
        finally:
            client.close()


def test_cannot_connect() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    # Nobody listens there any more.
    with pytest.raises(ConnectionLost, match="cannot connect"):
        Client("alice", port=port).connect(timeout=2)


def test_requests_after_close(make_client: ClientFactory) -> None:
    alice = make_client("alice")
    alice.close()
    with pytest.raises(ClientClosed):
        alice.ping()
    with pytest.raises(ClientClosed):
        alice.next_event(0)
    alice.close()  # idempotent


def test_shutdown_fails_the_session(server: ChatServer, make_client: ClientFactory) -> None:
    alice = make_client("alice")
    server.shutdown()
    events = list(alice.events(timeout=5))  # ends when the client ends
    assert isinstance(events[0], Error) and events[0].code == ErrorCode.SHUTDOWN
    assert events[1:] == [Disconnected(f"shutdown: {events[0].message}", events[0], False)]
    with pytest.raises(ConnectionLost):
        alice.next_event(0)
    with pytest.raises(ConnectionLost):
        alice.ping()
