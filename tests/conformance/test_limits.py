"""Sections 10 and 11, and the limits of section 2: rate limits, a full server,
slow consumers, and lists cut to fit a frame."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import pytest

from tests.conformance.wire import Clients, Frame, Target, unique_nick, unique_room

# Rate limit of the dedicated server: slow refill, so that nothing refills
# during a test.
RATE = 0.5
BURST = 6
# An external server's refill must leave refusals to count on: the tests
# allow for this much time of refill while they send.
SEND_SLACK = 0.5


@pytest.fixture
def limited(clients: Clients, start_server: Callable[..., Target]) -> Target:
    """A server with a small rate limit; the external one reads its own from welcome."""
    if clients.target.external:
        return clients.target
    return start_server("a small rate limit", rate=RATE, burst=BURST)


def _pings(count: int, prefix: str) -> list[Frame]:
    return [{"type": "ping", "id": f"{prefix}{n}"} for n in range(count)]


def test_commands_over_the_rate_limit_are_refused(clients: Clients, limited: Target) -> None:
    wire = clients.login(target=limited)
    rate, burst = wire.limits["rate"], wire.limits["burst"]
    slack = math.ceil(rate * SEND_SLACK)
    over = 3 + slack
    if over >= burst - 1:
        pytest.skip(f"rate {rate:g}/s refills too fast for burst {burst} to be measured")
    # The bucket holds `burst` tokens (one of which `hello` may have spent).
    frames = _pings(burst + over, "p")
    wire.send(*frames)
    replies = [wire.reply(f["id"]) for f in frames]
    refused = [r for r in replies if r["type"] == "error"]
    assert all(r["type"] == "pong" for r in replies[: burst - 1]), "the burst is allowed"
    assert len(refused) >= over - slack, "commands beyond the burst are refused"
    for error in refused:
        assert (error["code"], error["fatal"]) == ("rate_limited", False), error
    # `pong` and `bye` are never refused: both still work on an empty bucket.
    wire.send({"type": "pong", "token": "free"}, {"type": "bye", "id": "free"})
    assert wire.until_closed() == [{"type": "ok", "ref": "free"}]


def test_a_flood_is_fatal_and_rooms_are_told_kicked(clients: Clients, limited: Target) -> None:
    room = unique_room()
    watcher = clients.login(room, target=limited)
    flooder = clients.login(room, target=limited)
    rate, burst = flooder.limits["rate"], flooder.limits["burst"]
    # Drain the bucket, then `burst` refusals in a row, with room for refills.
    count = 3 * burst + 4 * math.ceil(rate * SEND_SLACK) + 4
    flooder.send(*_pings(count, "f"))
    frames = flooder.until_closed()
    errors = [f for f in frames if f["type"] == "error"]
    assert errors, f"{count} commands at once were not refused"
    last = frames[-1]
    assert (last["type"], last.get("code"), last.get("fatal")) == ("error", "rate_limited", True)
    run = 0
    for frame in frames[:-1]:
        run = run + 1 if frame["type"] == "error" else 0
        if frame["type"] == "error":
            assert (frame["code"], frame["fatal"]) == ("rate_limited", False), frame
    assert run >= burst - 1, f"the flood ended after only {run + 1} refusals in a row"
    left = watcher.wait_type("member_left", nick=flooder.nick)
    assert left == {"type": "member_left", "room": room, "nick": flooder.nick, "reason": "kicked"}


def test_server_full_is_fatal(clients: Clients, start_server: Callable[..., Target]) -> None:
    server = start_server("room for only two clients", max_clients=2)
    room = unique_room()
    watcher = clients.login(room, target=server)
    leaver = clients.login(room, target=server)
    refused = clients.connect(server)
    refused.send({"type": "hello", "id": 1, "nick": unique_nick()})
    error = refused.fatal("server_full")
    assert "ref" not in error or error["ref"] == 1
    # Once a client has left, there is room again.
    leaver.send({"type": "bye"})
    leaver.until_closed()
    watcher.wait_type("member_left", nick=leaver.nick)
    assert clients.login(target=server).welcomed


def test_a_client_that_does_not_read_is_dropped(
    clients: Clients, start_server: Callable[..., Target]
) -> None:
    # A small send queue, and a reader with small socket buffers and segments,
    # so that little traffic fills them all.
    server = start_server(
        "a small send queue", hard_limit=16 * 1024, soft_limit=8 * 1024, rate=1e4, burst=10_000
    )
    room = unique_room()
    slow = clients.login(room, target=server, rcvbuf=4096, maxseg=536)
    flooder = clients.login(room, target=server)
    text = "x" * flooder.limits["max_text"]
    left: Frame | None = None
    for n in range(400):  # ~1.6 MB at most; far less is needed
        rid = f"f{n}"
        flooder.send_whole({"type": "say", "id": rid, "room": room, "text": text})

        def echo_or_drop(f: Frame, rid: str = rid) -> bool:
            return f.get("ref") == rid or (f["type"] == "member_left" and f["nick"] == slow.nick)

        echo = flooder.wait(echo_or_drop, "the echo, or the slow client's departure")
        if echo["type"] == "member_left":
            left = echo
            break
    assert left is not None, "the client that never read was never dropped"
    assert left == {"type": "member_left", "room": room, "nick": slow.nick, "reason": "kicked"}
    # The flooder was never held up, and still is not.
    flooder.barrier()
    # The slow client's stream ends; if the reason made it, it is slow_consumer.
    frames = slow.until_closed()
    errors = [f for f in frames if f["type"] == "error"]
    assert errors in ([], [frames[-1]])
    if errors:
        assert (errors[0]["code"], errors[0]["fatal"]) == ("slow_consumer", True)


def test_rooms_sends_the_longest_prefix_that_fits(
    clients: Clients, start_server: Callable[..., Target]
) -> None:
    max_frame = 700
    server = start_server("a small max_frame", max_frame=max_frame, rate=1e4, burst=10_000)
    wire = clients.login(target=server)
    # Rows of one size: room names of 32 characters, one member, no topic.
    names = [f"{unique_room()}{'-' * 32}"[:32] for _ in range(30)]
    wire.send(*({"type": "join", "id": n, "room": name} for n, name in enumerate(names)))
    for n in range(len(names)):
        assert wire.reply(n)["type"] == "joined"
    reply = wire.request({"type": "rooms", "id": "all"})
    size = len(json.dumps(reply, separators=(",", ":")).encode())
    row = len(json.dumps({"room": names[0], "members": 1, "topic": ""}).replace(" ", "")) + 1
    assert size <= max_frame
    assert 0 < len(reply["rooms"]) < len(names)
    assert {r["room"] for r in reply["rooms"]} <= set(names)
    assert size + row > max_frame, f"{len(reply['rooms'])} rows sent, but one more would fit"


# -- metering (section 10, since 1.3): every frame costs a token ---------------------------


def test_metering_a_flood_of_invalid_frames_ends_with_too_many_errors(
    clients: Clients, limited: Target
) -> None:
    room = unique_room()
    watcher = clients.login(room, target=limited)
    flooder = clients.login(room, target=limited)
    burst = flooder.limits["burst"]
    count = 3 * burst + 4 * math.ceil(flooder.limits["rate"] * SEND_SLACK) + 4
    flooder.send_whole(*([b"{}\n"] * count))
    frames = flooder.until_closed()
    assert len(frames) <= burst + 1, "rejected frames are answered only while tokens last"
    last = frames[-1]
    assert (last["code"], last["fatal"]) == ("too_many_errors", True), last
    for frame in frames[:-1]:
        assert frame["type"] == "error" and frame["fatal"] is False, frame
    left = watcher.wait_type("member_left", nick=flooder.nick)
    assert left["reason"] == "kicked"


def test_metering_pongs_are_charged_and_a_flood_of_them_is_fatal(
    clients: Clients, limited: Target
) -> None:
    wire = clients.login(target=limited)
    burst = wire.limits["burst"]
    count = 3 * burst + 4 * math.ceil(wire.limits["rate"] * SEND_SLACK) + 4
    wire.send_whole(*({"type": "pong", "token": f"t{n}"} for n in range(count)))
    frames = wire.until_closed()
    assert frames, "a flood of pongs ends the session"
    # A refused pong is never answered: the only frame is the fatal error.
    assert [(f["code"], f["fatal"]) for f in frames] == [("rate_limited", True)], frames
