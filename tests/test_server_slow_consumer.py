"""A client that stops reading is dropped; nobody else waits for it."""

from __future__ import annotations

from typing import Any

from tests.support import Collector, Wire, login, running

TEXT = "x" * 3000


def _flood(settings: dict[str, Any], count: int) -> tuple[list[dict[str, Any]], list[int]]:
    """Flood a room until its non-reading member is dropped; return what that member
    reads afterwards, and the ids of every message sent."""
    with running(rate=10_000.0, burst=10_000, **settings) as server:
        lazy = Wire(server.address, rcvbuf=4096)
        assert lazy.hello("lazy")["type"] == "welcome"
        assert lazy.request(type="join", room="lobby")["type"] == "joined"
        healthy = Collector(login(server, "healthy", "lobby"))
        sender = login(server, "sender", "lobby")
        sent: list[int] = []
        for n in range(count):
            sender.send(type="say", id=n, room="lobby", text=TEXT)
            sent.append(sender.until(lambda f, n=n: f.get("ref") == n)["id"])  # type: ignore[misc]
            if any(f["type"] == "member_left" for f in healthy.snapshot()):
                break
        left = [f for f in healthy.snapshot() if f["type"] == "member_left"]
        assert left == [
            {"type": "member_left", "room": "lobby", "nick": "lazy", "reason": "kicked"}
        ]
        # The healthy member got every message, in order, without waiting for the lazy one.
        healthy.wait_for(lambda fs: any(f.get("id") == sent[-1] for f in fs))
        assert [f["id"] for f in healthy.snapshot() if f["type"] == "message"] == sent
        # The lazy client, reading now, finds the reason as its last frame.
        return lazy.closed(timeout=5), sent


def test_hard_limit_drops_a_client_that_does_not_read() -> None:
    frames, sent = _flood({"hard_limit": 64 * 1024, "soft_limit": 32 * 1024}, 5000)
    assert frames[-1] == {
        "type": "error",
        "code": "slow_consumer",
        "message": "you did not read your messages fast enough",
        "fatal": True,
    }
    received = [f["id"] for f in frames if f["type"] == "message"]
    assert received == sent[: len(received)]
    assert len(received) < len(sent)


def test_soft_limit_drops_a_client_that_stays_behind() -> None:
    frames, _ = _flood(
        {"hard_limit": 64 * 1024 * 1024, "soft_limit": 16 * 1024, "soft_seconds": 0.3}, 100_000
    )
    assert frames[-1]["code"] == "slow_consumer"
