"""Limits that protect the server from clients that stall or flood."""

from __future__ import annotations

from tests.support import Wire, login, running


def test_half_a_frame_then_silence_is_dropped_after_the_handshake_timeout() -> None:
    with running(handshake_timeout=0.3) as server:
        wire = Wire(server.address)
        wire.raw(b'{"type":"hello","ni')
        frames = wire.closed()
        assert [(f["code"], f["fatal"]) for f in frames] == [("timeout", True)]
        assert server.wait_idle(5)


def test_idle_client_is_pinged_and_dropped_when_silent_and_rooms_are_told() -> None:
    with running(ping_interval=0.2, ping_timeout=0.3) as server:
        watcher = login(server, "watcher", "lobby")
        silent = login(server, "silent", "lobby")
        ping = silent.until(lambda f: f["type"] == "ping")
        assert ping["token"]
        # The watcher answers its own pings; the silent one never does.
        while True:
            frame = watcher.until(lambda f: f["type"] in ("ping", "member_left"))
            if frame["type"] == "ping":
                watcher.send(type="pong", token=frame["token"])
                continue
            assert frame == {
                "type": "member_left",
                "room": "lobby",
                "nick": "silent",
                "reason": "timeout",
            }
            break
        assert silent.closed()[-1]["code"] == "timeout"


def test_rate_limit_refuses_excess_then_disconnects_a_flood() -> None:
    with running(rate=1.0, burst=5) as server:
        wire = login(server, "flooder")
        for n in range(5):
            wire.send(type="ping", id=n)
        replies = [wire.until(lambda f, n=n: f.get("ref") == n) for n in range(5)]  # type: ignore[misc]
        assert {r["type"] for r in replies} == {"pong"}
        wire.send(type="ping", id="over")
        refused = wire.until(lambda f: f.get("ref") == "over")
        assert (refused["code"], refused["fatal"]) == ("rate_limited", False)
        for n in range(10):
            wire.send(type="ping", id=f"f{n}")
        frames = wire.closed()
        assert frames[-1]["code"] == "rate_limited"
        assert frames[-1]["fatal"] is True


def test_oversized_frame_closes_only_that_connection() -> None:
    with running(max_frame=1024) as server:
        bystander = login(server, "bystander", "lobby")
        wire = login(server, "big", "lobby")
        wire.raw(b'{"type":"say","room":"lobby","text":"' + b"x" * 2000)
        frames = wire.closed()
        assert [(f["code"], f["fatal"]) for f in frames] == [("frame_too_large", True)]
        left = bystander.until(lambda f: f["type"] == "member_left")
        assert left["reason"] == "kicked"
        assert bystander.request(type="ping")["type"] == "pong"
