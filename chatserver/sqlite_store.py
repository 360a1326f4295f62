"""The embedded default store: SQLite in WAL mode.

One connection writes (used only by the sequencer thread); another, behind a
lock, serves `history` to the reader threads, which WAL lets run alongside the
writer. `synchronous=NORMAL` makes a commit durable against a crash of the
process (kill -9); an operating-system crash may lose the last commits.

The generation of the state (its epoch, PROTOCOL.md 13) is kept in the
database; beside it, in `<db>.epoch`, the server records how far ids have
been handed out. Ids are reserved in blocks: the database and the side file
both record the end of the block (the mark) before any id of it is published.
A database whose mark is below the side file's was restored from an older
copy: its messages since then are lost, so it gets a new epoch, and ids go on
above the side file's mark, so that no id a client saw is handed out again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
from pathlib import Path

from chatproto import RoomMessage
from chatserver.store import Batch, KeyedMessage, RoomRecord, Snapshot, Store, new_epoch

__all__ = ["SQLiteStore"]

log = logging.getLogger(__name__)

_BLOCK = 4096  # ids reserved at a time: the side file is written once per block

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
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
# Since 1.3: the idempotency key a message was sent with, as "<folded nick> <key>".
_KEYED = """
CREATE INDEX IF NOT EXISTS messages_keyed ON messages (id) WHERE idem IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_by_key ON messages (idem) WHERE idem IS NOT NULL;
"""


def _row(row: tuple[int, str, str, str, int]) -> RoomMessage:
    # Rows were validated before they were written.
    return RoomMessage.model_construct(id=row[0], room=row[1], nick=row[2], text=row[3], ts=row[4])


class SQLiteStore(Store):
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._writer = self._connect()
        self._writer.executescript(_SCHEMA)
        _add_key_column(self._writer)
        self._reader = self._connect()
        self._read_lock = threading.Lock()
        self._side = Path(self.path + ".epoch")
        self._mark = 0  # ids below it may have been handed out
        self._epoch = ""

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        return db

    def load(self, recent: int, *, keys_since: int = 0) -> Snapshot:
        db = self._writer
        (last,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()
        epoch, next_id = self._open_generation(last + 1)
        rooms: dict[str, RoomRecord] = {}
        for name, topic in db.execute("SELECT name, topic FROM rooms"):
            rows = db.execute(
                "SELECT id, room, nick, text, ts FROM messages WHERE room = ? "
                "ORDER BY id DESC LIMIT ?",
                (name, recent + 1),
            ).fetchall()
            older = len(rows) > recent
            rows = rows[:recent]
            rooms[name] = RoomRecord(topic, [_row(r) for r in reversed(rows)], older)
        return Snapshot(next_id, rooms, epoch, self._keyed_since(keys_since))

    # -- the generation of the state, and ids never handed out twice ----------

    def _open_generation(self, next_id: int) -> tuple[str, int]:
        """The epoch to serve and the first id to hand out; reserves a block."""
        db = self._writer
        meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
        epoch = meta.get("epoch")
        mark = int(meta.get("mark", "0"))
        side = _read_side(self._side)
        if epoch is None:
            epoch = new_epoch()  # a new database (or one from before epochs)
        elif side is not None and side[0] == epoch and mark < side[1]:
            log.warning(
                "%s is older than %s (ids up to %d were handed out, it knows of %d): "
                "restored from a copy? Its state starts a new epoch",
                self.path,
                self._side,
                side[1],
                mark,
            )
            epoch = new_epoch()
        first = max(next_id, mark, side[1] if side is not None else 0)
        self._reserve(epoch, first + _BLOCK, db_too=True)
        return epoch, first

    def _reserve(self, epoch: str, mark: int, *, db_too: bool) -> None:
        """Record that ids below `mark` may be handed out: in the database (unless
        the caller's transaction did), then in the side file."""
        if db_too:
            db = self._writer
            db.execute("BEGIN")
            db.executemany(
                "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                [("epoch", epoch), ("mark", str(mark))],
            )
            db.execute("COMMIT")
        _write_side(self._side, epoch, mark)
        self._mark = mark
        self._epoch = epoch

    def _keyed_since(self, since: int) -> list[KeyedMessage]:
        """Messages sent with a key at or after `since` (ms), oldest first."""
        found: list[KeyedMessage] = []
        rows = self._writer.execute(
            "SELECT id, room, ts, idem FROM messages INDEXED BY messages_keyed "
            "WHERE idem IS NOT NULL ORDER BY id DESC"
        )
        for id, room, ts, idem in rows:
            if ts < since:
                break
            nick, _, key = str(idem).partition(" ")
            found.append(KeyedMessage(nick, key, room, id, ts))
        found.reverse()
        return found

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
            keys = batch.keys
            db.executemany(
                "INSERT INTO messages (id, room, nick, text, ts, idem) VALUES (?, ?, ?, ?, ?, ?)",
                [(m.id, m.room, m.nick, m.text, m.ts, _idem(keys, m.id)) for m in batch.messages],
            )
            mark = self._next_mark(batch)
            if mark:
                db.execute("UPDATE meta SET value = ? WHERE name = 'mark'", (str(mark),))
            db.executemany(
                "INSERT OR REPLACE INTO accounts (nick, hash) VALUES (?, ?)",
                list(batch.accounts.items()),
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        if mark:
            # Before any id of the new block is published (the sequencer publishes
            # after this returns).
            self._reserve(self._epoch, mark, db_too=False)

    def _next_mark(self, batch: Batch) -> int:
        """A new mark if the batch uses ids at or past the current one, else 0."""
        if not batch.messages or batch.messages[-1].id < self._mark:
            return 0
        last: int = batch.messages[-1].id
        return last + 1 + _BLOCK

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

    def message(self, room: str, id: int) -> RoomMessage | None:
        with self._read_lock:
            row = self._reader.execute(
                "SELECT id, room, nick, text, ts FROM messages WHERE id = ? AND room = ?",
                (id, room),
            ).fetchone()
        return None if row is None else _row(row)

    def keyed(self, nick: str, key: str) -> RoomMessage | None:
        with self._read_lock:
            row = self._reader.execute(
                "SELECT id, room, nick, text, ts FROM messages WHERE idem = ? "
                "ORDER BY id DESC LIMIT 1",
                (f"{nick} {key}",),
            ).fetchone()
        return None if row is None else _row(row)

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


def _idem(keys: dict[int, tuple[str, str]], id: int) -> str | None:
    scope = keys.get(id)
    return None if scope is None else f"{scope[0]} {scope[1]}"


def _add_key_column(db: sqlite3.Connection) -> None:
    """Give a database from before 1.3 the column for idempotency keys."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
    if "idem" not in columns:
        db.execute("ALTER TABLE messages ADD COLUMN idem TEXT")
    db.executescript(_KEYED)


def _read_side(path: Path) -> tuple[str, int] | None:
    """The (epoch, mark) a side file records, or None if there is none to trust."""
    try:
        data = json.loads(path.read_text())
        return str(data["epoch"]), int(data["mark"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s is unreadable (%s); ignored", path, exc)
        return None


def _write_side(path: Path, epoch: str, mark: int) -> None:
    """Replace the side file atomically and durably."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump({"epoch": epoch, "mark": mark}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
