"""Reconnection: a server restart on the same port and database loses the client nothing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from chatclient import (
    Client,
    ClientEvent,
    ConnectionLost,
    Disconnected,
    Reconnected,
    Reconnecting,
    ReconnectPolicy,
)
from chatproto import (
    ErrorCode,
    History,
    HistoryPage,
    Join,
    Joined,
    MemberLeft,
    Ping,
    RoomMessage,
)
from chatserver.server import ChatServer
from chatserver.sqlite_store import SQLiteStore
from tests.client.conftest import (
    Recorder,
    ServerFactory,
    client_threads,
    next_of,
    start_on_port,
    start_server,
)
from tests.client.fakes import Peer, ScriptedServer, message

FAST_RETRY = ReconnectPolicy(initial=0.02, maximum=0.2, timeout=5.0)


class Gate:
    """Holds the receive thread inside the `Disconnected` callback until opened.

    The library reconnects only after its callback returns, so the test
    decides, without timing, what happens while the client is away.
    """

    def __init__(self) -> None:
        self.disconnected = threading.Event()
        self.opened = threading.Event()

    def __call__(self, event: ClientEvent) -> None:
        if isinstance(event, Disconnected) and event.reconnecting:
            self.disconnected.set()
            self.opened.wait(20)


def _reconnecting_client(port: int, gate: Gate, recorder: Recorder) -> Client:
    def on_event(event: ClientEvent) -> None:
        recorder(event)
        gate(event)

    return Client("alice", port=port, on_event=on_event, reconnect=FAST_RETRY)


def test_restart_loses_no_message(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    before = client_threads()
    first = start_server(SQLiteStore(db))
    port = first.address[1]
    gate, recorder = Gate(), Recorder()
    alice = _reconnecting_client(port, gate, recorder)
    servers: list[ChatServer] = [first]
    try:
        alice.connect()
        alice.join("lobby")
        alice.join("dev")
        with Client("bob", port=port) as bob:
            bob.join("lobby")
            early = bob.say("lobby", "before the restart")
            next_of(alice, RoomMessage, id=early.id)

        first.shutdown()
        assert gate.disconnected.wait(5)
        second = start_on_port(port, db)
        servers.append(second)
        # While alice is away: 120 messages in lobby (more than a joined
        # history or a history page holds) and a few in dev.
        with Client("bob", port=port) as bob:
            bob.join("lobby")
            bob.join("dev")
            missed = [bob.say("lobby", f"missed {i}").id for i in range(120)]
            missed_dev = [bob.say("dev", f"dev {i}").id for i in range(3)]
            gate.opened.set()
            back = next_of(alice, Reconnected, timeout=10)
            assert back.recovered == len(missed) + len(missed_dev)
            assert {j.room for j in back.rooms} == {"lobby", "dev"}
            live = bob.say("lobby", "after the restart")
            next_of(alice, RoomMessage, id=live.id)

        assert alice.joined_rooms == {"lobby", "dev"}
        messages = recorder.of(RoomMessage)
        ids = [m.id for m in messages]
        assert len(ids) == len(set(ids)), "a message was delivered twice"
        lobby = [m.id for m in messages if m.room == "lobby"]
        dev = [m.id for m in messages if m.room == "dev"]
        assert lobby == [early.id, *missed, live.id]
        assert dev == missed_dev
        assert alice.say("lobby", "I am back").nick == "alice"
    finally:
        alice.close()
        for server in servers:
            server.shutdown()
    assert client_threads() == before


def test_reconnect_retries_while_the_nick_is_held(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    first = start_server(SQLiteStore(db))
    port = first.address[1]
    gate, recorder = Gate(), Recorder()
    alice = _reconnecting_client(port, gate, recorder)
    servers = [first]
    try:
        alice.connect()
        alice.join("lobby")
        first.shutdown()
        assert gate.disconnected.wait(5)
        servers.append(start_on_port(port, db))
        with Client("watcher", port=port) as watcher:
            watcher.join("lobby")
            # As if the server had not yet noticed alice's old connection died.
            impostor = Client("alice", port=port)
            impostor.connect()
            impostor.join("lobby")
            gate.opened.set()
            recorder.wait_for(
                lambda events: any(
                    isinstance(e, Reconnecting) and e.error is not None and "nick_in_use" in e.error
                    for e in events
                )
            )
            assert not alice.connected
            impostor.close()
            next_of(watcher, MemberLeft, nick="alice")
            back = next_of(alice, Reconnected, timeout=10)
            assert back.welcome.nick == "alice" and back.attempts >= 2
            assert watcher.members("lobby").members == ["alice", "watcher"]
    finally:
        alice.close()
        for server in servers:
            server.shutdown()


def test_requests_while_reconnecting_fail_fast(tmp_path: Path) -> None:
    first = start_server(SQLiteStore(tmp_path / "chat.db"))
    gate, recorder = Gate(), Recorder()
    alice = _reconnecting_client(first.address[1], gate, recorder)
    try:
        alice.connect()
        first.shutdown()
        assert gate.disconnected.wait(5)
        with pytest.raises(ConnectionLost, match="reconnecting"):
            alice.ping()
        disconnected = recorder.of(Disconnected)[0]
        assert disconnected.error is not None
        assert disconnected.error.code == ErrorCode.SHUTDOWN
    finally:
        gate.opened.set()
        alice.close()


def test_resume_drops_duplicates_and_pages_history() -> None:
    """The exact exchange of PROTOCOL.md section 13, against a scripted server.

    Live messages that repeat what the history already gave are dropped; the
    history is paged while `more`; everything arrives once, in id order.
    """

    def first(peer: Peer) -> None:
        peer.welcome()
        join = peer.expect(Join)
        peer.send(Joined(ref=join.id, room="lobby", topic="", members=["alice"], history=[]))
        peer.send(message(1), message(2))
        peer.expect(Ping)  # the test's signal that alice has seen both

    def second(peer: Peer) -> None:
        peer.welcome()
        join = peer.expect(Join)
        # The replayed history does not reach back to id 2: alice must page.
        recent = [message(9), message(10)]
        peer.send(Joined(ref=join.id, room="lobby", topic="", members=["alice"], history=recent))
        page = peer.expect(History)
        assert (page.after, page.before) == (2, None)
        peer.send(HistoryPage(ref=page.id, room="lobby", messages=[message(4)], more=True))
        # Live traffic during the resume, repeating what history will hold.
        peer.send(message(10), message(11))
        page = peer.expect(History)
        assert page.after == 4
        peer.send(
            HistoryPage(
                ref=page.id, room="lobby", messages=[message(i) for i in (6, 9, 10)], more=False
            )
        )
        peer.send(message(11), message(12))  # 11 again, then something new
        peer.idle()

    recorder = Recorder()
    with ScriptedServer(first, second) as fake:
        alice = Client("alice", port=fake.port, on_event=recorder, reconnect=FAST_RETRY)
        try:
            alice.connect()
            alice.join("lobby")
            recorder.wait_for(lambda events: len(events) == 2)
            with pytest.raises(ConnectionLost):
                alice.ping()  # the first script hangs up here
            back = next_of(alice, Reconnected)
            assert back.recovered == 4  # 4, 6, 9, 10
            recorder.wait_for(
                lambda events: any(isinstance(e, RoomMessage) and e.id == 12 for e in events)
            )
        finally:
            alice.close()
    ids = [e.id for e in recorder.of(RoomMessage)]
    assert ids == [1, 2, 4, 6, 9, 10, 11, 12]


def test_reconnect_moves_on_to_a_fallback(make_server: ServerFactory) -> None:
    first, second = make_server(), make_server()
    recorder = Recorder()
    alice = Client(
        "alice",
        port=first.address[1],
        fallbacks=[second.address],
        on_event=recorder,
        reconnect=FAST_RETRY,
    )
    try:
        alice.connect()
        alice.join("lobby")
        first.shutdown()
        back = next_of(alice, Reconnected, timeout=10)
        assert (alice.host, alice.port) == second.address
        assert [j.room for j in back.rooms] == ["lobby"]
        with Client("bob", port=second.address[1]) as bob:
            bob.join("lobby")
            sent = bob.say("lobby", "found you")
            assert next_of(alice, RoomMessage, id=sent.id).text == "found you"
    finally:
        alice.close()
