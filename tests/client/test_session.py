"""`Session` alone: one connection's requests and replies, over a socket pair."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future

import pytest

from chatclient.errors import ConnectionLost, RequestTimeout
from chatclient.link import Link
from chatclient.session import Session
from chatproto import (
    Command,
    Event,
    Hello,
    Join,
    Joined,
    Ping,
    PongReply,
    RoomMessage,
    Say,
    ServerPing,
    Welcome,
)
from tests.client.fakes import Peer, message

WAIT = 5.0


class Wired:
    """A greeted session, its reader running, and the server's end of the socket."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        self.stop = threading.Event()
        self.peer = Peer(theirs, self.stop)
        self.seen: list[tuple[Command, Event]] = []
        self.session = Session(
            Link(ours), lambda command, reply: self.seen.append((command, reply))
        )
        self.events: list[Event] = []
        self.arrived = threading.Condition()
        greeter = threading.Thread(target=self.peer.welcome)
        greeter.start()
        welcome = self.session.exchange(Hello(nick="alice"), time.monotonic() + WAIT)
        greeter.join(WAIT)
        assert isinstance(welcome, Welcome)
        self.ended: tuple[str, object] | None = None
        self.reader = threading.Thread(target=self._read)
        self.reader.start()

    def _read(self) -> None:
        self.ended = self.session.run(self._sink)

    def _sink(self, event: Event) -> None:
        with self.arrived:
            self.events.append(event)
            self.arrived.notify_all()

    def wait_for_event(self, kind: type[object]) -> None:
        with self.arrived:
            assert self.arrived.wait_for(
                lambda: any(isinstance(e, kind) for e in self.events), WAIT
            ), self.events

    def submit(self, command: Command, deadline: float | None = None) -> Future[Event]:
        future: Future[Event] = Future()
        self.session.submit(command, future, deadline or time.monotonic() + WAIT)
        return future

    def close(self) -> None:
        self.stop.set()
        self.session.close()
        self.reader.join(WAIT)
        self.peer.sock.close()


@pytest.fixture
def wired() -> Iterator[Wired]:
    pair = Wired()
    yield pair
    pair.close()


def test_replies_settle_futures_and_events_go_to_the_sink(wired: Wired) -> None:
    future = wired.submit(Join(room="lobby"))
    join = wired.peer.expect(Join)
    joined = Joined(ref=join.id, room="lobby", topic="", members=["alice"], history=[])
    wired.peer.send(joined, message(7))
    assert future.result(WAIT) == joined
    wired.wait_for_event(RoomMessage)
    assert wired.events == [message(7)]
    assert [type(c) for c, _ in wired.seen] == [Join]  # the observer saw the reply first


def test_a_forgotten_request_drops_its_late_reply(wired: Wired) -> None:
    future: Future[Event] = Future()
    rid = wired.session.submit(Ping(token="late"), future, time.monotonic() + WAIT)
    assert wired.session.waiting == 1
    wired.session.forget(rid)
    assert wired.session.waiting == 0
    ping = wired.peer.expect(Ping)
    wired.peer.send(PongReply(ref=ping.id, token="late"), message(8))
    wired.wait_for_event(RoomMessage)  # read after the late reply
    assert not future.done()
    assert wired.events == [message(8)]


def test_the_reader_goes_on_while_the_server_reads_nothing(wired: Wired) -> None:
    """The server stops reading: sends wait for room only until their deadline, and
    the reader still takes in events (the ping's answer cannot wait behind them)."""
    text = "x" * 4000
    with pytest.raises(RequestTimeout):
        for _ in range(10_000):
            wired.submit(Say(room="lobby", text=text), time.monotonic() + 0.2)
    wired.peer.send(ServerPing(token="still-there"), message(9))
    wired.wait_for_event(RoomMessage)
    assert wired.session.waiting > 0


def test_end_fails_waiting_requests_and_refuses_new_ones(wired: Wired) -> None:
    future = wired.submit(Ping())
    wired.session.end(ConnectionLost("gone"))
    with pytest.raises(ConnectionLost, match="gone"):
        future.result(WAIT)
    with pytest.raises(ConnectionLost, match="gone"):
        wired.submit(Ping())
    assert wired.session.waiting == 0
