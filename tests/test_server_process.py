"""The server as people run it: a process with flags, signals and a SQLite file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import Wire, server_process


def test_help_lists_every_flag() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "chatserver", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for flag in (
        "--host",
        "--port",
        "--db",
        "--store",
        "--max-clients",
        "--history",
        "--motd",
        "--log-level",
        "--max-frame",
        "--rate",
        "--burst",
        "--handshake-timeout",
        "--ping-interval",
        "--ping-timeout",
        "--soft-limit",
        "--soft-seconds",
        "--hard-limit",
        "--max-members",
        "--large-room",
    ):
        assert flag in out


def test_bad_flag_values_are_refused_cleanly() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chatserver", "--soft-limit", "10", "--hard-limit", "5"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "soft" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_shuts_down_gracefully(tmp_path: Path, signum: int) -> None:
    db = tmp_path / "chat.db"
    with server_process("--db", str(db)) as (proc, address):
        wire = Wire(address)
        wire.hello("alice")
        wire.request(type="join", room="lobby")
        echo = wire.request(type="say", room="lobby", text="before the end")
        started = time.monotonic()
        proc.send_signal(signum)
        frames = wire.closed(timeout=5)
        assert proc.wait(5) == 0
        assert time.monotonic() - started < 2.0
        assert frames[-1]["code"] == "shutdown"
        assert frames[-1]["fatal"] is True
    with server_process("--db", str(db)) as (proc, address):
        page = login_and_history(address)
        assert [m["id"] for m in page] == [echo["id"]]


def login_and_history(address: tuple[str, int]) -> list[dict[str, object]]:
    wire = Wire(address)
    wire.hello("reader")
    page = wire.request(type="history", room="lobby")
    wire.close()
    assert page["type"] == "history"
    messages: list[dict[str, object]] = page["messages"]
    return messages


def test_acknowledged_messages_survive_kill_9_and_ids_go_on(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    with server_process("--db", str(db), "--rate", "1000", "--burst", "100") as (proc, address):
        wire = Wire(address)
        wire.hello("alice")
        wire.request(type="join", room="lobby")
        wire.request(type="topic", room="lobby", topic="kept")
        acked = [wire.request(type="say", room="lobby", text=f"m{n}")["id"] for n in range(50)]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
    with server_process("--db", str(db)) as (proc, address):
        wire = Wire(address)
        wire.hello("alice")
        joined = wire.request(type="join", room="lobby")
        assert joined["topic"] == "kept"
        page = wire.request(type="history", room="lobby", limit=100)
        assert [m["id"] for m in page["messages"]] == acked
        after = wire.request(type="say", room="lobby", text="after restart")
        assert after["id"] > acked[-1]
        assert [m["id"] for m in joined["history"]] == acked[-len(joined["history"]) :]


def test_server_full_is_refused_with_an_error(tmp_path: Path) -> None:
    with server_process("--store", "memory", "--max-clients", "2") as (_, address):
        first = Wire(address)
        first.hello("one")
        second = Wire(address)
        second.hello("two")
        third = Wire(address)
        frames = third.closed()
        assert [f["code"] for f in frames] == ["server_full"]
        first.close()
        assert second.request(type="ping")["type"] == "pong"


def test_memory_store_runs_without_a_file(tmp_path: Path) -> None:
    with server_process("--store", "memory", "--motd", "hi there") as (_, address):
        wire = Wire(address)
        assert wire.hello("alice")["motd"] == "hi there"
    assert not list(tmp_path.iterdir())
