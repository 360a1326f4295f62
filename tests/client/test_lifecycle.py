"""Connecting, closing, keeping alive: no thread outlives a client, pings are answered."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from chatclient import ChatError, Client, ClientClosed, Disconnected, Reconnecting, ReconnectPolicy
from chatproto import (
    ClientConnection,
    Error,
    ErrorCode,
    Hello,
    Join,
    LeaveReason,
    MemberLeft,
    RoomMessage,
)
from tests.client.conftest import ClientFactory, Recorder, ServerFactory, client_threads, next_of


def test_close_leaves_no_threads(server_port: int) -> None:
    before = client_threads()
    with Client("alice", port=server_port) as alice:
        alice.join("lobby")
        alice.say("lobby", "hi")
        # The receive thread and the connection's sender.
        assert len(client_threads()) == len(before) + 2
    assert client_threads() == before


def test_close_says_bye(make_client: ClientFactory) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    alice.join("lobby")
    bob.join("lobby")
    started = time.monotonic()
    bob.close()
    assert time.monotonic() - started < 1.0  # the `ok` came: no waiting out the timeout
    left = next_of(alice, MemberLeft)
    assert (left.nick, left.reason) == ("bob", LeaveReason.QUIT)


def test_close_fails_waiting_requests_and_ends_the_iterator(make_client: ClientFactory) -> None:
    alice = make_client("alice")
    ended = threading.Event()

    def read() -> None:
        for _ in alice.events():
            pass
        ended.set()

    reader = threading.Thread(target=read)
    reader.start()
    alice.close()
    reader.join(5)
    assert ended.is_set()
    with pytest.raises(ClientClosed):
        alice.join("lobby")


def test_close_from_the_callback(make_client: ClientFactory) -> None:
    before = client_threads()
    closed = threading.Event()
    holder: list[Client] = []

    def on_event(event: object) -> None:
        if isinstance(event, RoomMessage):
            holder[0].close()  # from the receive thread itself
            closed.set()

    alice = make_client("alice", on_event=on_event)
    holder.append(alice)
    bob = make_client("bob")
    alice.join("lobby")
    bob.join("lobby")
    bob.say("lobby", "close now")
    assert closed.wait(5)
    with pytest.raises(ClientClosed):
        while True:
            alice.next_event(5)  # the message, then: closed
    for thread in client_threads() - before:
        if thread.name == "chatclient-alice":
            thread.join(5)
    assert {t.name for t in client_threads() - before} == {"chatclient-bob", "chatclient-bob-send"}


def test_blocking_request_from_the_callback_is_refused(make_client: ClientFactory) -> None:
    errors: list[BaseException] = []
    done = threading.Event()
    holder: list[Client] = []

    def on_event(event: object) -> None:
        if isinstance(event, RoomMessage):
            try:
                holder[0].ping()
            except RuntimeError as exc:
                errors.append(exc)
            done.set()

    alice = make_client("alice", on_event=on_event)
    holder.append(alice)
    bob = make_client("bob")
    alice.join("lobby")
    bob.join("lobby")
    bob.say("lobby", "ping me")
    assert done.wait(5)
    assert len(errors) == 1 and "submit" in str(errors[0])


def test_close_while_reconnecting_is_prompt(make_server: ServerFactory) -> None:
    before = client_threads()
    doomed = make_server()
    recorder = Recorder()
    alice = Client(
        "alice",
        port=doomed.address[1],
        on_event=recorder,
        reconnect=ReconnectPolicy(initial=0.01, maximum=0.05),
    )
    alice.connect()
    doomed.shutdown()
    # Nobody listens any more: attempts fail, one after the other.
    recorder.wait_for(
        lambda events: any(isinstance(e, Reconnecting) and e.error is not None for e in events)
    )
    started = time.monotonic()
    alice.close()
    assert time.monotonic() - started < 1.0
    assert client_threads() == before


def test_reconnect_gives_up_after_its_attempts(make_server: ServerFactory) -> None:
    doomed = make_server()
    alice = Client(
        "alice", port=doomed.address[1], reconnect=ReconnectPolicy(initial=0.01, attempts=2)
    )
    try:
        alice.connect()
        doomed.shutdown()
        events = list(alice.events(timeout=5))
        assert [type(e) for e in events] == [
            Error,
            Disconnected,
            Reconnecting,
            Reconnecting,
            Disconnected,
        ]
        last = events[-1]
        assert isinstance(last, Disconnected) and not last.reconnecting
        assert "gave up after 2 attempts" in last.reason
    finally:
        alice.close()


def test_pings_are_answered(make_server: ServerFactory, make_client: ClientFactory) -> None:
    lively = make_server(ping_interval=0.1, ping_timeout=0.5)
    port = lively.address[1]
    recorder = Recorder()
    alice = make_client("alice", port=port, on_event=recorder)
    alice.join("lobby")
    # A bare protocol client that never answers pings, as a control.
    mute = ClientConnection()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(mute.send(Hello(nick="mute")) + mute.send(Join(room="lobby")))
        # The server times the mute client out; alice, idle as long, stays.
        recorder.wait_for(
            lambda events: any(isinstance(e, MemberLeft) and e.nick == "mute" for e in events)
        )
    left = recorder.of(MemberLeft)[0]
    assert left.reason == LeaveReason.TIMEOUT
    assert alice.pings_answered >= 1
    assert alice.ping().type == "pong" and alice.connected
    assert not recorder.of(Disconnected) and not recorder.of(Error)


def test_connect_twice_is_an_error(make_client: ClientFactory) -> None:
    alice = make_client("alice")
    with pytest.raises(Exception, match="already"):
        alice.connect()


def test_a_refused_hello_can_be_retried(make_client: ClientFactory) -> None:
    watcher, bob = make_client("watcher"), make_client("bob")
    watcher.join("lobby")
    bob.join("lobby")
    late = make_client("bob", connect=False)
    with pytest.raises(ChatError) as excinfo:
        late.connect()
    assert excinfo.value.code == ErrorCode.NICK_IN_USE
    bob.close()
    # The server frees the nick as it tells the room that bob left.
    next_of(watcher, MemberLeft, nick="bob")
    late.connect()
    assert late.nickname == "bob"
