"""Idempotency keys across a restart of a real server process (since 1.3).

The key of a `say` is stored with the message in SQLite, so a retry after the
server restarted (even after kill -9) still gets the original echo and the
message is not stored twice.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.support import Wire, server_process


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_retry_after_a_restart_is_answered_with_the_original(tmp_path: Path, signum: int) -> None:
    db = str(tmp_path / "chat.db")
    with server_process("--db", db) as (proc, address):
        alice = Wire(address)
        alice.hello("alice", version="1.3")
        alice.request(type="join", room="lobby")
        first = alice.request(type="say", room="lobby", text="exactly once", key="retry-me")
        assert first["type"] == "message"
        proc.send_signal(signum)
        proc.wait(10)
    with server_process("--db", db) as (proc, address):
        watcher = Wire(address)
        watcher.hello("watcher")
        watcher.request(type="join", room="lobby")
        alice = Wire(address)
        alice.hello("ALICE", version="1.3")  # the key's scope is the folded nick
        alice.request(type="join", room="lobby")
        retry = alice.request(type="say", room="lobby", text="exactly once", key="retry-me")
        assert {k: v for k, v in retry.items() if k != "ref"} == {
            k: v for k, v in first.items() if k != "ref"
        }
        watcher.send(type="ping", id="p")
        frames = []
        while (frame := watcher.recv()) is not None and frame.get("ref") != "p":
            frames.append(frame)
        assert [f["type"] for f in frames] == ["member_joined"], "the retry reached nobody"
        history = watcher.request(type="history", room="lobby")
        assert [m["id"] for m in history["messages"]] == [first["id"]]
        fresh = alice.request(type="say", room="lobby", text="a new one", key="another")
        assert fresh["id"] > first["id"]
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
