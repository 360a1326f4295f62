"""A client that stops reading is dropped; nobody else waits for it."""

from __future__ import annotations

import contextlib
import json
import threading
import time
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


def _counting_reader(wire: Wire, want: int, done: threading.Event, counts: list[int]) -> None:
    """Does nothing but recv, counting messages, until `want` or the end."""
    buf = b""
    seen = 0
    wire.sock.settimeout(30)
    with contextlib.suppress(OSError):
        while seen < want:
            data = wire.sock.recv(1 << 16)
            if not data:
                break
            buf += data
            cut = buf.rfind(b"\n") + 1
            seen += buf[:cut].count(b'"type":"message"')
            buf = buf[cut:]
    counts.append(seen)
    done.set()


def test_a_burst_of_large_messages_does_not_drop_readers_that_keep_up() -> None:
    """Issue 11 item 7: six senders send 16 KB texts within their burst; five readers
    that only recv get every message, and only a reader that stops is dropped."""
    senders, each = 6, 39  # the burst, but the token `join` took
    text = "\U0001f600" * 4000  # 16,000 bytes: 3.7 MB for each reader at once
    with running(soft_seconds=2.0) as server:
        stalled = Wire(server.address, rcvbuf=4096)
        assert stalled.hello("stalled")["type"] == "welcome"
        assert stalled.request(type="join", room="big")["type"] == "joined"
        readers = [login(server, f"reader{i}", "big") for i in range(5)]
        writers = [login(server, f"sender{i}", "big") for i in range(senders)]
        counts: list[int] = []
        done = [threading.Event() for _ in readers]
        threads = [
            threading.Thread(target=_counting_reader, args=(w, senders * each, d, counts))
            for w, d in zip(readers, done, strict=True)
        ]
        for thread in threads:
            thread.start()
        frame = json.dumps({"type": "say", "room": "big", "text": text}).encode() + b"\n"
        for wire in writers:
            wire.raw(frame * each)
        for event in done:
            assert event.wait(30)
        assert counts == [senders * each] * 5
        # The reader that never read is dropped; the others are all still there.
        watcher = login(server, "watcher")
        deadline = time.monotonic() + 10
        while True:
            members = watcher.request(type="members", room="big")["members"]
            if "stalled" not in members or time.monotonic() > deadline:
                break
            time.sleep(0.1)  # within the rate limit
        assert sorted(members) == sorted(
            [f"reader{i}" for i in range(5)] + [f"sender{i}" for i in range(senders)]
        )
