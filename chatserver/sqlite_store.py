"""The embedded default store: SQLite in WAL mode.

One connection writes (used only by the sequencer thread); another, behind a
lock, serves `history` to the reader threads, which WAL lets run alongside the
writer. `synchronous=NORMAL` makes a commit durable against a crash of the
process (kill -9); an operating-system crash may lose the last commits.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from chatproto import RoomMessage
from chatserver.store import Batch, RoomRecord, Snapshot, Store

__all__ = ["SQLiteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rooms (
    name  TEXT PRIMARY KEY,
    topic TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS messages (
    id   INTEGER PRIMARY KEY,
    room TEXT NOT NULL REFERENCES rooms(name),
    nick TEXT NOT NULL,
    text TEXT NOT NULL,
    ts   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_room ON messages (room, id);
CREATE TABLE IF NOT EXISTS accounts (
    nick TEXT PRIMARY KEY,  -- folded
    hash TEXT NOT NULL
);
"""


def _row(row: tuple[int, str, str, str, int]) -> RoomMessage:
    # Rows were validated before they were written.
    return RoomMessage.model_construct(id=row[0], room=row[1], nick=row[2], text=row[3], ts=row[4])


class SQLiteStore(Store):
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._writer = self._connect()
        self._writer.executescript(_SCHEMA)
        self._reader = self._connect()
        self._read_lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        return db

    def load(self, recent: int) -> Snapshot:
        db = self._writer
        (last,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()
        rooms: dict[str, RoomRecord] = {}
        for name, topic in db.execute("SELECT name, topic FROM rooms"):
            rows = db.execute(
                "SELECT id, room, nick, text, ts FROM messages WHERE room = ? "
                "ORDER BY id DESC LIMIT ?",
                (name, recent),
            ).fetchall()
            rooms[name] = RoomRecord(topic, [_row(r) for r in reversed(rows)])
        return Snapshot(last + 1, rooms)

    def commit(self, batch: Batch) -> None:
        db = self._writer
        db.execute("BEGIN")
        try:
            db.executemany(
                "INSERT OR IGNORE INTO rooms (name) VALUES (?)", [(r,) for r in batch.rooms]
            )
            db.executemany(
                "UPDATE rooms SET topic = ? WHERE name = ?",
                [(topic, room) for room, topic in batch.topics.items()],
            )
            db.executemany(
                "INSERT INTO messages (id, room, nick, text, ts) VALUES (?, ?, ?, ?, ?)",
                [(m.id, m.room, m.nick, m.text, m.ts) for m in batch.messages],
            )
            db.executemany(
                "INSERT OR REPLACE INTO accounts (nick, hash) VALUES (?, ?)",
                list(batch.accounts.items()),
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def history(
        self, room: str, *, before: int | None, after: int | None, limit: int
    ) -> tuple[list[RoomMessage], bool]:
        if after is not None:
            sql = "SELECT id, room, nick, text, ts FROM messages WHERE room = ? AND id > ? "
            sql += "ORDER BY id ASC LIMIT ?"
            args: tuple[object, ...] = (room, after, limit + 1)
        else:
            sql = "SELECT id, room, nick, text, ts FROM messages WHERE room = ? AND id < ? "
            sql += "ORDER BY id DESC LIMIT ?"
            args = (room, before if before is not None else 2**63 - 1, limit + 1)
        with self._read_lock:
            rows = self._reader.execute(sql, args).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        if after is None:
            rows.reverse()
        return [_row(r) for r in rows], more

    def account(self, nick: str) -> str | None:
        with self._read_lock:
            row = self._reader.execute(
                "SELECT hash FROM accounts WHERE nick = ?", (nick,)
            ).fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        with self._read_lock:
            self._reader.close()
        self._writer.close()
