"""Accounts through the library: `register`, passwords in `hello` and `nick`,
the server password, and reconnections that must prove the nick again."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from chatclient import (
    ChatError,
    Client,
    ClientEvent,
    Disconnected,
    InvalidRequest,
    Reconnected,
    Reconnecting,
    ReconnectPolicy,
)
from chatproto import ErrorCode, MemberLeft, Ok, RoomMessage
from chatserver.server import ChatServer
from chatserver.sqlite_store import SQLiteStore
from tests.client.conftest import (
    ClientFactory,
    Recorder,
    ServerFactory,
    next_of,
    start_on_port,
    start_server,
)

PASSWORD = "correct horse battery"
OTHER = "another good password"
RETRY = ReconnectPolicy(initial=0.02, maximum=0.2, timeout=5.0)


def refused(make: ClientFactory, nick: str, **options: object) -> ChatError:
    """The error that refuses `nick`'s hello."""
    client = make(nick, connect=False, **options)
    with pytest.raises(ChatError) as caught:
        client.connect()
    assert not client.connected
    return caught.value


def leave(client: Client, watcher: Client) -> None:
    """Close `client` and wait until the server has let its nick go."""
    nick = client.nickname
    client.close()
    next_of(watcher, MemberLeft, nick=nick)


def test_register_then_the_nick_needs_its_password(make_client: ClientFactory) -> None:
    watcher = make_client("watcher")
    watcher.join("lobby")
    alice = make_client("alice")
    alice.join("lobby")
    reply = alice.register(PASSWORD)
    assert isinstance(reply, Ok) and reply.ref is not None
    leave(alice, watcher)

    for options in ({}, {"password": "not the password"}):
        error = refused(make_client, "alice", **options)
        assert error.code == ErrorCode.AUTH_FAILED
        assert error.fatal
        assert "registered" in error.message
    # Registered in any spelling.
    assert refused(make_client, "ALICE").code == ErrorCode.AUTH_FAILED

    back = make_client("alice", password=PASSWORD)
    assert back.welcome is not None and back.welcome.nick == "alice"
    assert back.join("lobby").members == ["alice", "watcher"]


def test_register_twice_and_short_passwords(make_client: ClientFactory) -> None:
    alice = make_client("alice")
    alice.register(PASSWORD)
    with pytest.raises(ChatError) as caught:
        alice.register(OTHER)
    assert caught.value.code == ErrorCode.ALREADY_REGISTERED
    with pytest.raises(InvalidRequest, match="at least 8 characters"):
        alice.register("short")
    assert alice.ping().type == "pong"  # neither refusal ended the session


def test_nick_change_to_a_registered_nick_needs_its_password(make_client: ClientFactory) -> None:
    watcher = make_client("watcher")
    watcher.join("lobby")
    bob = make_client("bob")
    bob.join("lobby")
    bob.register(PASSWORD)
    leave(bob, watcher)

    carol = make_client("carol")
    for password in (None, "not the password"):
        with pytest.raises(ChatError) as caught:
            carol.nick("bob", password)
        assert caught.value.code == ErrorCode.AUTH_FAILED
        assert not caught.value.fatal
        assert carol.nickname == "carol"
    assert carol.ping().type == "pong"  # not fatal after hello

    renamed = carol.nick("bob", PASSWORD)
    assert (renamed.old, renamed.new) == ("carol", "bob")
    assert carol.nickname == "bob"
    # A change of case only is the same nick: no password needed.
    assert carol.nick("Bob").new == "Bob"


def test_server_password(make_server: ServerFactory, make_client: ClientFactory) -> None:
    server = make_server(server_password="let me in")
    port = server.address[1]
    for options in ({}, {"server_password": "wrong"}):
        error = refused(make_client, "alice", port=port, **options)
        assert error.code == ErrorCode.AUTH_FAILED
        assert "server" in error.message
    alice = make_client("alice", port=port, server_password="let me in")
    assert alice.join("lobby").members == ["alice"]


class Gate:
    """Holds the receive thread in the `Disconnected` callback until opened, so a
    test decides what happens before the client tries to come back."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.disconnected = threading.Event()
        self.opened = threading.Event()

    def __call__(self, event: ClientEvent) -> None:
        self.recorder(event)
        if isinstance(event, Disconnected) and event.reconnecting:
            self.disconnected.set()
            self.opened.wait(20)


def test_reconnection_sends_the_passwords(tmp_path: Path) -> None:
    """After `register`, and after `nick` to another registered nick, the client
    comes back with the password of the nick it has, and the server's."""
    db = tmp_path / "chat.db"
    secret: dict[str, Any] = {"server_password": "let me in"}
    first = start_server(SQLiteStore(db), **secret)
    port = first.address[1]
    servers: list[ChatServer] = [first]
    recorder = Recorder()
    alice = Client("alice", port=port, on_event=recorder, reconnect=RETRY, timeout=5.0, **secret)
    try:
        alice.connect()
        alice.join("lobby")
        alice.register(PASSWORD)
        with Client("carol", port=port, timeout=5.0, **secret) as carol:
            carol.register(OTHER)
            carol.join("lobby")
        next_of(alice, MemberLeft, nick="carol")

        first.shutdown()
        servers.append(start_on_port(port, db, **secret))
        back = next_of(alice, Reconnected, timeout=10)
        assert back.welcome.nick == "alice"

        alice.nick("carol", OTHER)
        servers[-1].shutdown()
        servers.append(start_on_port(port, db, **secret))
        back = next_of(alice, Reconnected, timeout=10)
        assert back.welcome.nick == "carol"
        assert alice.say("lobby", "still me").nick == "carol"
        assert not [e for e in recorder.of(Reconnecting) if e.error and "auth_failed" in e.error]
    finally:
        alice.close()
        for server in servers:
            server.shutdown()


def test_refused_password_on_reconnection_stops_it(tmp_path: Path) -> None:
    """Someone registered the nick while the client was away: retrying could only
    use up the address's allowance of failed logins, so the client gives up."""
    db = tmp_path / "chat.db"
    first = start_server(SQLiteStore(db))
    port = first.address[1]
    recorder = Recorder()
    gate = Gate(recorder)
    alice = Client("alice", port=port, on_event=gate, reconnect=RETRY, timeout=5.0)
    servers: list[ChatServer] = [first]
    try:
        alice.connect()
        first.shutdown()
        assert gate.disconnected.wait(5)
        servers.append(start_on_port(port, db))
        with Client("alice", port=port, timeout=5.0) as mallory:
            mallory.register(PASSWORD)
            gate.opened.set()
            recorder.wait_for(
                lambda events: any(
                    isinstance(e, Disconnected) and not e.reconnecting for e in events
                )
            )
        last = recorder.of(Disconnected)[-1]
        assert last.reason.startswith("cannot reconnect: auth_failed: ")
        assert len(recorder.of(Reconnecting)) == 1  # one attempt, not a retry loop
        assert not alice.connected
        assert not recorder.of(RoomMessage)
    finally:
        gate.opened.set()
        alice.close()
        for server in servers:
            server.shutdown()
