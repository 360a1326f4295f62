"""Sections 6.10, 6.11 and 9: ping and pong both ways, and the timeouts."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from tests.conformance.wire import Clients, Frame, Target, Wire, unique_room

# Short timings for the dedicated server; ping_interval > ping_timeout, so
# that a second ping proves the first pong kept the session alive.
PING_INTERVAL = 0.5
PING_TIMEOUT = 0.4
HANDSHAKE_TIMEOUT = 0.3
# An external server is used if its keepalive is about this quick.
QUICK_ENOUGH = 2.0


@pytest.fixture
def quick(clients: Clients, start_server: Callable[..., Target]) -> Target:
    """A server with short keepalive timings: the external one if its are short."""
    if clients.target.external:
        limits = clients.login().limits
        if limits["ping_interval"] + limits["ping_timeout"] > QUICK_ENOUGH:
            pytest.skip(
                f"the server's ping_interval {limits['ping_interval']:g} s and ping_timeout "
                f"{limits['ping_timeout']:g} s are too long for a bounded test"
            )
        return clients.target
    return start_server(
        "short ping timings",
        ping_interval=PING_INTERVAL,
        ping_timeout=PING_TIMEOUT,
        handshake_timeout=HANDSHAKE_TIMEOUT,
    )


def _within(wire: Wire) -> float:
    """Long enough for an idle client to be pinged and then timed out, with slack."""
    return float(2 * (wire.limits["ping_interval"] + wire.limits["ping_timeout"]) + 2)


def test_ping_is_answered_with_pong_and_the_same_token(clients: Clients) -> None:
    wire = clients.login()
    assert wire.request({"type": "ping", "id": 11, "token": "t1"}) == {
        "type": "pong",
        "ref": 11,
        "token": "t1",
    }
    assert wire.request({"type": "ping", "id": 12}) == {"type": "pong", "ref": 12}
    token = "\u00e9" * 64
    assert wire.request({"type": "ping", "id": 13, "token": token})["token"] == token
    assert wire.request({"type": "ping", "id": 14, "token": ""})["token"] == ""


def test_idle_client_is_pinged_and_pong_keeps_it(clients: Clients, quick: Target) -> None:
    wire = clients.login(target=quick)
    ping = wire.next("the server's ping", timeout=_within(wire))
    assert ping["type"] == "ping" and "ref" not in ping
    wire.send({"type": "pong", "id": "ignored", "token": ping.get("token")})
    # Had the pong not counted, `timeout` would come before the next ping.
    again = wire.next("a second ping", timeout=_within(wire))
    assert again["type"] == "ping"
    wire.send({"type": "pong", "token": again.get("token")}, {"type": "ping", "id": "rtt"})
    assert wire.next("the pong to the client's ping") == {"type": "pong", "ref": "rtt"}


def _answer_pings_until(wire: Wire, kind: str, nick: str | None) -> Frame:
    """Keep `wire` alive until it gets a `kind` event about `nick`."""
    while True:
        frame = wire.wait(
            lambda f: f["type"] == "ping" or (f["type"] == kind and f.get("nick") == nick),
            f"{kind} for {nick}",
            timeout=_within(wire),
        )
        if frame["type"] != "ping":
            return frame
        wire.send({"type": "pong", "token": frame.get("token")})


def test_unanswered_ping_is_fatal_timeout(clients: Clients, quick: Target) -> None:
    room = unique_room()
    watcher = clients.login(room, target=quick)
    silent = clients.login(room, target=quick)
    # The watcher answers its own pings meanwhile, in a thread of its own.
    outcome: list[Frame | BaseException] = []

    def keep_watching() -> None:
        try:
            outcome.append(_answer_pings_until(watcher, "member_left", silent.nick))
        except BaseException as exc:
            outcome.append(exc)

    keeper = threading.Thread(target=keep_watching, daemon=True)
    keeper.start()
    ping = silent.next("the server's ping", timeout=_within(silent))
    assert ping["type"] == "ping"
    silent.fatal("timeout", timeout=_within(silent))
    keeper.join(_within(watcher) + 1)
    assert len(outcome) == 1, "the watcher was not told in time"
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    left = outcome[0]
    assert left == {"type": "member_left", "room": room, "nick": silent.nick, "reason": "timeout"}


def test_half_a_frame_is_no_sign_of_life(clients: Clients, quick: Target) -> None:
    wire = clients.login(target=quick)
    ping = wire.next("the server's ping", timeout=_within(wire))
    assert ping["type"] == "ping"
    # Bytes arrive, but no complete frame: the ping stays unanswered.
    wire.write(b'{"type":"pong","token":')
    wire.fatal("timeout", timeout=_within(wire))


def test_no_hello_in_time_is_fatal_timeout(
    clients: Clients, start_server: Callable[..., Target]
) -> None:
    server = start_server("a short handshake timeout", handshake_timeout=HANDSHAKE_TIMEOUT)
    silent = clients.connect(server)
    stalled = clients.connect(server)
    stalled.write(b'{"type":"hello","nick":"stal')  # half a frame, then nothing
    for wire in (silent, stalled):
        error = wire.fatal("timeout")
        assert "ref" not in error
    # A client that does say hello in time is welcome.
    assert clients.login(target=server).welcomed


def test_a_fatal_error_is_the_last_frame_even_as_the_room_empties(
    clients: Clients, quick: Target
) -> None:
    # Silent members time out together: none may hear of the others' departure
    # after its own fatal error.
    room = unique_room()
    silent = [clients.login(room, target=quick) for _ in range(4)]
    for wire in silent:
        wire.fatal("timeout", timeout=_within(wire))


@pytest.mark.parametrize(
    "answer",
    [
        b'{"type":"pong","token":"not-the-token"}\n',  # pong tokens are not checked
        b'{"type":"pong"}\n',
        b"{}\n",  # a rejected frame is a complete frame: a sign of life
        b"not json\n",
    ],
    ids=["wrong-token", "no-token", "empty-object", "not-json"],
)
def test_any_complete_frame_is_a_sign_of_life(
    clients: Clients, quick: Target, answer: bytes
) -> None:
    wire = clients.login(target=quick)
    for _ in range(2):
        ping = wire.wait_type("ping", timeout=_within(wire))
        assert "ref" not in ping
        wire.write(answer)
    # Had the answers not counted, `timeout` would come before a third ping.
    assert wire.wait_type("ping", timeout=_within(wire))["type"] == "ping"
    assert all(f["type"] == "error" and f["fatal"] is False for f in wire.pending())


def test_blank_lines_are_no_sign_of_life(clients: Clients, quick: Target) -> None:
    wire = clients.login(target=quick)
    wire.wait_type("ping", timeout=_within(wire))
    wire.write(b"\n \r\n\t\n")
    wire.fatal("timeout", timeout=_within(wire))
