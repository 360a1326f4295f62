"""The library under faults (issue 14, items 1-6 and 16): a server that stops reading,
rooms that refuse a rejoin, a server that lost its state, concurrent connects,
fallbacks, ghost sessions and retried sends."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from chatclient import (
    Client,
    ClientError,
    ClientEvent,
    ConnectionLost,
    Disconnected,
    Reconnected,
    ReconnectPolicy,
    RejoinFailed,
    RequestTimeout,
)
from chatclient.cli import main as cli_main
from chatproto import (
    DirectMessage,
    Dm,
    Error,
    ErrorCode,
    Join,
    Joined,
    MemberJoined,
    MemberLeft,
    RoomMessage,
    Say,
    ServerPing,
)
from chatserver.server import ChatServer
from chatserver.sqlite_store import SQLiteStore
from chatserver.store import MemoryStore
from tests.client.conftest import (
    Recorder,
    ServerFactory,
    client_threads,
    next_of,
    start_on_port,
    start_server,
)
from tests.client.fakes import Peer, ScriptedServer, message
from tests.client.proxy import Proxy
from tests.support import server_process

FAST_RETRY = ReconnectPolicy(initial=0.02, maximum=0.2, timeout=5.0)
BIG = "x" * 4000


def fill(client: Client) -> int:
    """Send until the server's unread bytes fill every buffer: `submit` then times out."""
    for sent in range(100_000):
        try:
            client.submit(Say(room="lobby", text=BIG))
        except RequestTimeout:
            return sent
    raise AssertionError("the buffers never filled")


def closing_time(client: Client, timeout: float) -> float:
    started = time.monotonic()
    client.close(timeout)
    return time.monotonic() - started


# -- item 1: close() in time, and a reader that never waits for a writer --------------


def test_close_returns_in_time_when_the_server_stops_reading() -> None:
    """A real server, SIGSTOPped: the client's writes pile up, and close() still
    takes no longer than its timeout."""
    with server_process("--rate", "100000", "--burst", "100000") as (proc, (host, port)):
        alice = Client("alice", host=host, port=port, timeout=0.5, pace=False)
        alice.connect()
        alice.join("lobby")
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            filled = threading.Event()

            def flood() -> None:
                fill(alice)
                filled.set()

            threading.Thread(target=flood, daemon=True).start()
            assert filled.wait(30), "a send blocked instead of timing out"
            with pytest.raises(RequestTimeout):
                alice.ping(timeout=0.2)
            assert closing_time(alice, 1.0) < 1.5
        finally:
            os.kill(proc.pid, signal.SIGCONT)


def test_the_reader_goes_on_while_sends_are_stuck() -> None:
    """The server reads nothing more but keeps sending: a ping and a message still
    come through (the old client's pong waited behind the blocked send, and reading
    stopped with it)."""
    go_on = threading.Event()

    def deaf(peer: Peer) -> None:
        peer.welcome()
        assert go_on.wait(30)  # reads nothing from here on
        peer.send(ServerPing(token="t"), message(1))
        peer.idle()

    recorder = Recorder()
    with ScriptedServer(deaf) as fake:
        alice = Client("alice", port=fake.port, timeout=0.5, pace=False, on_event=recorder)
        alice.connect()
        try:
            fill(alice)
            go_on.set()
            recorder.wait_for(lambda events: any(isinstance(e, RoomMessage) for e in events))
            assert closing_time(alice, 1.0) < 1.5
        finally:
            alice.close()


def test_close_returns_in_time_in_every_state(make_server: ServerFactory) -> None:
    before = client_threads()
    new = Client("alice", port=make_server().address[1])
    assert closing_time(new, 1.0) < 1.0

    # Connecting: the server accepts and never answers the hello.
    connecting_error: list[BaseException] = []

    def mute(peer: Peer) -> None:
        peer.idle()

    with ScriptedServer(mute) as fake:
        stuck = Client("alice", port=fake.port, timeout=30)

        def connect() -> None:
            try:
                stuck.connect()
            except ClientError as exc:
                connecting_error.append(exc)

        thread = threading.Thread(target=connect)
        thread.start()
        while not fake.accepted.wait(0.05):
            pass
        assert closing_time(stuck, 1.0) < 1.5
        thread.join(5)
        assert connecting_error and "closed" in str(connecting_error[0])

    connected = Client("alice", port=make_server().address[1])
    connected.connect()
    assert closing_time(connected, 1.0) < 1.0
    assert closing_time(connected, 1.0) < 1.0  # closed already: nothing to wait for
    assert client_threads() == before


# -- item 2: each room rejoined on its own ---------------------------------------------


def test_a_room_that_refuses_the_rejoin_leaves_the_others(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    first = start_server(SQLiteStore(db))
    port = first.address[1]
    gate = threading.Event()

    def on_event(event: ClientEvent) -> None:
        if isinstance(event, Disconnected):
            gate.wait(20)  # the test decides what happens while alice is away

    alice = Client("alice", port=port, on_event=on_event, reconnect=FAST_RETRY)
    servers = [first]
    try:
        alice.connect()
        for room in ("a", "b", "c"):
            alice.join(room)
        first.shutdown()
        # Rooms now hold one member at most, and bob takes b first.
        servers.append(start_on_port(port, db, max_members=1))
        with Client("bob", port=port) as bob:
            bob.join("b")
            gate.set()
            back = next_of(alice, Reconnected, timeout=10)
            assert [j.room for j in back.rooms] == ["a", "c"]
            refused = next_of(alice, RejoinFailed)
            assert (refused.room, refused.code) == ("b", ErrorCode.ROOM_FULL)
            assert alice.joined_rooms == {"a", "c"}
            assert alice.say("a", "still here").room == "a"
    finally:
        gate.set()
        alice.close()
        for server in servers:
            server.shutdown()


# -- item 3 and 16: epoch, resume token, idempotency keys (scripted) ---------------------


def test_a_new_epoch_lets_reused_ids_through() -> None:
    """The server lost its state and its ids start again: the new messages arrive."""

    def before(peer: Peer) -> None:
        peer.welcome(epoch="one", resume="token-1")
        join = peer.expect(Join)
        peer.send(Joined(ref=join.id, room="lobby", topic="", members=["alice"], history=[]))
        peer.send(message(100), message(101))
        peer.expect(Say)  # the test's signal to hang up

    def after(peer: Peer) -> None:
        hello = peer.welcome(epoch="two", resume="token-2")
        assert hello.resume == "token-1"
        join = peer.expect(Join)
        peer.send(
            Joined(ref=join.id, room="lobby", topic="", members=["alice"], history=[message(1)])
        )
        peer.send(message(2))
        peer.idle()

    recorder = Recorder()
    with ScriptedServer(before, after) as fake:
        alice = Client("alice", port=fake.port, on_event=recorder, reconnect=FAST_RETRY)
        try:
            alice.connect()
            alice.join("lobby")
            recorder.wait_for(lambda events: len(recorder.of(RoomMessage)) == 2)
            alice.submit(Say(room="lobby", text="hang up"))
            back = next_of(alice, Reconnected)
            assert back.epoch_changed and back.recovered == 1
            recorder.wait_for(lambda events: len(recorder.of(RoomMessage)) == 4)
        finally:
            alice.close()
    assert [m.id for m in recorder.of(RoomMessage)] == [100, 101, 1, 2]


def test_a_send_is_retried_with_its_key_after_a_reconnection() -> None:
    keys: list[str | None] = []

    def lost(peer: Peer) -> None:
        peer.welcome(resume="token-1")
        keys.append(peer.expect(Say).key)  # and hang up without an answer

    def back(peer: Peer) -> None:
        hello = peer.welcome()
        assert hello.resume == "token-1"
        say = peer.expect(Say)
        keys.append(say.key)
        peer.send(RoomMessage(ref=say.id, id=5, room="lobby", nick="alice", text=say.text, ts=1))
        peer.idle()

    with ScriptedServer(lost, back) as fake:
        alice = Client("alice", port=fake.port, reconnect=FAST_RETRY)
        try:
            alice.connect()
            assert alice.say("lobby", "once only").id == 5
        finally:
            alice.close()
    assert keys[0] is not None and keys == [keys[0], keys[0]]


def test_unavailable_is_retried_with_the_same_key() -> None:
    keys: list[str | None] = []

    def flaky(peer: Peer) -> None:
        peer.welcome()
        dm = peer.expect(Dm)
        keys.append(dm.key)
        peer.send(Error(ref=dm.id, code=ErrorCode.UNAVAILABLE, message="outcome unknown"))
        dm = peer.expect(Dm)
        keys.append(dm.key)
        peer.send(Error(ref=dm.id, code=ErrorCode.UNAVAILABLE, message="outcome unknown"))
        dm = peer.expect(Dm)
        keys.append(dm.key)
        peer.send(DirectMessage(ref=dm.id, id=9, nick="alice", to="bob", text=dm.text, ts=1))
        peer.idle()

    with ScriptedServer(flaky) as fake:
        alice = Client("alice", port=fake.port)
        try:
            alice.connect()
            assert alice.dm("bob", "hello", key="my-key-1").id == 9
        finally:
            alice.close()
    assert keys == ["my-key-1"] * 3


def test_every_say_has_its_own_key() -> None:
    seen: list[str | None] = []

    def watch(peer: Peer) -> None:
        peer.welcome()
        for _ in range(3):
            say = peer.expect(Say)
            seen.append(say.key)
            peer.send(RoomMessage(ref=say.id, id=len(seen), room="lobby", nick="a", text="t", ts=1))
        peer.idle()

    with ScriptedServer(watch) as fake:
        alice = Client("alice", port=fake.port)
        try:
            alice.connect()
            for _ in range(3):
                alice.say("lobby", "same text")
        finally:
            alice.close()
    assert len(set(seen)) == 3 and None not in seen


# -- item 4: concurrent connects, timed-out requests -------------------------------------


def test_concurrent_connects_make_one_connection(server_port: int) -> None:
    before = client_threads()
    alice = Client("alice", port=server_port)
    start = threading.Barrier(2)
    outcomes: list[object] = []

    def connect() -> None:
        start.wait(5)
        try:
            outcomes.append(alice.connect())
        except ClientError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=connect) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    try:
        assert sorted(type(o).__name__ for o in outcomes) == ["ClientError", "Welcome"]
        assert len(client_threads() - before) == 2  # one receive thread, one sender
    finally:
        alice.close()
    assert client_threads() == before


def test_a_timed_out_request_leaves_the_pending_table() -> None:
    def silent(peer: Peer) -> None:
        peer.welcome()
        peer.idle()

    with ScriptedServer(silent) as fake:
        alice = Client("alice", port=fake.port)
        try:
            alice.connect()
            for _ in range(3):
                with pytest.raises(RequestTimeout):
                    alice.ping(timeout=0.1)
            assert alice.pending_requests == 0
        finally:
            alice.close()


# -- item 5: fallbacks for the first connection --------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_first_connection_tries_the_fallbacks(make_server: ServerFactory) -> None:
    live = make_server()
    dead = free_port()
    alice = Client("alice", port=dead, fallbacks=[live.address])
    try:
        assert alice.connect().nick == "alice"
        assert (alice.host, alice.port) == live.address
    finally:
        alice.close()
    nobody = Client("alice", port=dead, fallbacks=[("127.0.0.1", free_port())])
    with pytest.raises(ConnectionLost, match=f"127.0.0.1:{dead}.*; 127.0.0.1:"):
        nobody.connect()


# -- item 6: errors in the caller's terms ----------------------------------------------------


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"timeout": -1}, "timeout must be > 0"),
        ({"timeout": 0}, "timeout must be > 0"),
        ({"queue_size": -1}, "queue_size must be >= 0"),
        ({"port": 70000}, "port must be from 1 to 65535"),
    ],
)
def test_bad_arguments_name_the_argument(options: dict[str, int], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Client("alice", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--timeout", "-1"], "--timeout must be > 0"),
        (["--timeout", "0"], "--timeout must be > 0"),
        (["--port", "0"], "--port must be from 1 to 65535"),
        (["--port", "x"], "--port"),
    ],
)
def test_bad_flags_are_one_line_naming_the_flag(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err


# -- end to end with a 1.3 server: ghosts, epochs, keys ------------------------------------


def test_a_ghost_session_is_taken_over_at_once(make_server: ServerFactory) -> None:
    server = make_server()
    seen = Recorder()
    with (
        Proxy(server.address) as proxy,
        Client("watcher", port=server.address[1], on_event=seen) as watcher,
    ):
        watcher.join("lobby")
        alice = Client("alice", port=proxy.port, reconnect=FAST_RETRY)
        try:
            alice.connect()
            alice.join("lobby")
            next_of(watcher, MemberJoined, nick="alice")
            proxy.cut()  # the server still holds alice's session: a ghost
            back = next_of(alice, Reconnected, timeout=10)
            assert back.welcome.resumed and back.attempts == 1
            said = alice.say("lobby", "back at once")
            seen.wait_for(lambda events: any(getattr(e, "id", None) == said.id for e in events))
            # Nobody was told alice left or came back.
            assert [e for e in seen.of(MemberJoined) if e.nick == "alice"] == [
                MemberJoined(room="lobby", nick="alice")
            ]
            assert not seen.of(MemberLeft)
        finally:
            alice.close()


def test_a_retried_send_is_stored_once(make_server: ServerFactory) -> None:
    server = make_server()
    with Proxy(server.address) as proxy, Client("watcher", port=server.address[1]) as watcher:
        watcher.join("lobby")
        alice = Client("alice", port=proxy.port, reconnect=FAST_RETRY, timeout=10)
        try:
            alice.connect()
            alice.join("lobby")
            proxy.hold()  # the echo will not reach alice
            result: list[RoomMessage | ClientError] = []

            def send() -> None:
                try:
                    result.append(alice.say("lobby", "once"))
                except ClientError as exc:
                    result.append(exc)

            sender = threading.Thread(target=send)
            sender.start()
            stored = next_of(watcher, RoomMessage, text="once")
            proxy.cut()
            sender.join(15)
            assert result and isinstance(result[0], RoomMessage), result
            assert result[0].id == stored.id
            page = watcher.history("lobby", limit=10)
            assert [m.text for m in page.messages].count("once") == 1
        finally:
            alice.close()


def test_a_server_that_lost_its_state_is_followed(make_server: ServerFactory) -> None:
    """A memory store restarted: the epoch changes and new messages are not taken
    for ones already seen."""
    first = make_server()
    port = first.address[1]
    alice = Client("alice", port=port, reconnect=FAST_RETRY)
    servers: list[ChatServer] = []
    try:
        alice.connect()
        alice.join("lobby")
        with Client("bob", port=port) as bob:
            bob.join("lobby")
            for i in range(5):
                next_of(alice, RoomMessage, id=bob.say("lobby", f"before {i}").id)
        first.shutdown()
        for _ in range(50):
            try:
                servers.append(start_server(MemoryStore(), port=port))
                break
            except OSError:
                time.sleep(0.05)  # a bounded retry of bind(), not a synchronisation
        back = next_of(alice, Reconnected, timeout=10)
        assert back.epoch_changed
        with Client("bob", port=port) as bob:
            bob.join("lobby")
            sent = bob.say("lobby", "after the loss")
            assert next_of(alice, RoomMessage, text="after the loss").id == sent.id
    finally:
        alice.close()
        for server in servers:
            server.shutdown()
