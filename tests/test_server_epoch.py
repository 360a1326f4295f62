"""The epoch across restarts of a real server process (PROTOCOL.md 13, since 1.3).

A restart that keeps the state (SQLite, also after kill -9) keeps the epoch;
one that lost it (a memory store, a SQLite file restored from an older copy)
changes it, and ids still never go back to one a client has seen.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

from tests.support import Wire, server_process


def _visit(address: tuple[str, int], nick: str, *texts: str) -> tuple[str, list[int]]:
    """Log in, say `texts` in "lobby"; the epoch and the ids of the echoes."""
    wire = Wire(address)
    welcome = wire.hello(nick, version="1.3")
    assert welcome["type"] == "welcome", welcome
    assert wire.request(type="join", room="lobby")["type"] == "joined"
    ids = []
    for text in texts:
        echo = wire.request(type="say", room="lobby", text=text)
        assert echo["type"] == "message", echo
        ids.append(echo["id"])
    history = wire.request(type="history", room="lobby", limit=100)
    wire.close()
    assert all(0 < m["id"] < 2**53 for m in history["messages"])
    epoch = welcome["epoch"]
    assert isinstance(epoch, str) and epoch
    return epoch, ids


def _stop(proc: subprocess.Popen[str], signum: int = signal.SIGTERM) -> None:
    proc.send_signal(signum)
    proc.wait(10)


def test_a_memory_store_restarted_is_a_new_epoch_and_ids_still_increase() -> None:
    with server_process("--store", "memory") as (proc, address):
        first, before = _visit(address, "alice", "one", "two")
        _stop(proc)
    with server_process("--store", "memory") as (proc, address):
        second, after = _visit(address, "alice", "three")
        _stop(proc)
    assert second != first, "a memory store keeps nothing: a new generation"
    assert after[0] > before[-1], "ids go on increasing across restarts"


def test_sqlite_restarts_keep_the_epoch_also_after_kill_9(tmp_path: Path) -> None:
    db = str(tmp_path / "chat.db")
    with server_process("--db", db) as (proc, address):
        first, a = _visit(address, "alice", "one")
        _stop(proc)
    with server_process("--db", db) as (proc, address):
        second, b = _visit(address, "alice", "two")
        _stop(proc, signal.SIGKILL)
    with server_process("--db", db) as (proc, address):
        third, c = _visit(address, "alice", "three")
        _stop(proc)
    assert first == second == third
    assert a[0] < b[0] < c[0]


def test_sqlite_restored_from_an_older_copy_is_a_new_epoch_without_reused_ids(
    tmp_path: Path,
) -> None:
    db = tmp_path / "chat.db"
    with server_process("--db", str(db)) as (proc, address):
        first, kept = _visit(address, "alice", "kept")
        _stop(proc)
    backup = tmp_path / "backup.db"
    shutil.copy(db, backup)  # the server closed cleanly: the file is the whole state
    with server_process("--db", str(db)) as (proc, address):
        second, lost = _visit(address, "alice", "lost 1", "lost 2")
        _stop(proc)
    assert second == first
    assert kept[0] < lost[0]
    # The operator restores the old copy.
    for extra in (Path(f"{db}-wal"), Path(f"{db}-shm")):
        extra.unlink(missing_ok=True)
    shutil.copy(backup, db)
    with server_process("--db", str(db)) as (proc, address):
        third, new = _visit(address, "alice", "after the restore")
        wire = Wire(address)
        wire.hello("bob")
        history = wire.request(type="history", room="lobby", limit=100)
        _stop(proc)
    assert third != first, "messages were lost: clients must be told to forget ids"
    assert new[0] > max(lost), "no id a client saw is handed out again"
    texts = [m["text"] for m in history["messages"]]
    assert texts == ["kept", "after the restore"]
