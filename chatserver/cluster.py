"""The back end of a cluster node: several servers share rooms through Redis.

Each state change is one Lua script (chatserver/redis_scripts.py), so Redis
orders them and no node ever sees half of one. Room messages and presence go
into one stream per room; every node reads the streams of the rooms its own
clients are in (chatserver/relay.py) and fans them out locally, encoded once
per node. A message is echoed to its sender only when the node reads it back
from Redis, so the echo still means that the message is stored.
"""

from __future__ import annotations

import itertools
import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from chatproto import (
    DirectMessage,
    Error,
    ErrorCode,
    LeaveReason,
    RequestId,
    RoomInfo,
    RoomMessage,
)
from chatserver import redis_scripts
from chatserver.backend import Backend, JoinRefused, Unavailable
from chatserver.config import ServerConfig
from chatserver.heartbeat import Heartbeat
from chatserver.hub import Hub, fold
from chatserver.logs import log_failure
from chatserver.redis_client import OUTAGES, Entry, connect, entry_number, message_of
from chatserver.relay import Pending, Relay
from chatserver.session import Session
from chatserver.store import new_epoch

__all__ = ["ClusterBackend"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_BATCH = 256
_INBOX_CAP = 10_000
_EVENTS_CAP = 10_000
_TOPIC_WAIT = 5.0


@dataclass(frozen=True, slots=True)
class _Post:
    session: Session
    room: str
    text: str
    ref: RequestId | None
    token: str


class ClusterBackend(Backend):
    """One node: commands become scripts; the relay and heartbeat threads do the rest."""

    def __init__(self, config: ServerConfig, hub: Hub, url: str) -> None:
        self._config = config
        self.hub = hub
        self.node = secrets.token_hex(4)
        self._redis = connect(url)
        self._script = {
            name: self._redis.register_script(getattr(redis_scripts, name))
            for name in redis_scripts.__all__
        }
        self._cap = str(config.redis_history)
        # One script call appends a batch, trimming as it goes: a batch longer
        # than a small cap would trim its own messages before any node read them.
        self._batch = max(1, min(_BATCH, config.redis_history // 4))
        self._tokens = itertools.count(1)
        self.pending: dict[str, Pending] = {}
        self._posts: queue.Queue[_Post | None] = queue.Queue(maxsize=4096)
        self._poster = threading.Thread(target=self._post_loop, name="chat-poster", daemon=True)
        self.relay = Relay(
            hub,
            connect(url, timeout=30.0, connections=2),
            self.node,
            self.pending,
            cap=config.redis_history,
        )
        self.heartbeat = Heartbeat(
            hub,
            self._redis,
            scripts=self._script,
            node=self.node,
            cap=self._cap,
            ttl=config.node_ttl,
            on_data_lost=self._forget_rooms,
        )

    # -- plumbing --------------------------------------------------------------

    def run(self, name: str, *args: object) -> Any:
        """Run one of redis_scripts; a lost Redis raises Unavailable."""
        return self.call(lambda: self._script[name](args=[self._cap, *args]))

    @staticmethod
    def call(operation: Callable[[], _T]) -> _T:
        try:
            return operation()
        except OUTAGES as exc:
            raise Unavailable(str(exc)) from exc

    def _token(self) -> str:
        return f"{self.node}/{next(self._tokens)}"

    def _session_key(self, session: Session) -> str:
        return f"{self.node}/{session.id}"

    def _forget_rooms(self) -> None:
        # Redis starts afresh: so do the streams, and this node's places in them.
        with self.hub.lock:
            self.hub.rooms.clear()
            self.relay.restart()

    def start(self) -> None:
        self.heartbeat.beat_once()  # fails loudly if Redis cannot be reached at start
        self.relay.prime()
        self.relay.start()
        self._poster.start()
        self.heartbeat.start()
        log.info("cluster node %s joined", self.node)

    def stop(self) -> None:
        self._posts.put(None)
        self._poster.join()
        self.heartbeat.stop()
        self.heartbeat.join()
        self.relay.stop()
        self.relay.join()
        self.heartbeat.leave()
        self._redis.close()

    # -- identity ----------------------------------------------------------------

    def claim(self, session: Session, nick: str) -> bool:
        if not self.run("CLAIM", fold(nick), nick, self.node, self._session_key(session)):
            return False
        return self.hub.claim(session, nick)

    def resume(self, session: Session, nick: str, token: str) -> bool:
        # Not in a cluster yet: the token is ignored and the hello goes on as usual.
        return False

    def epoch(self) -> str:
        # Named in Redis, once per data set: a Redis that comes back empty gets a new one.
        def read() -> str:
            with self._redis.pipeline(transaction=False) as pipe:
                pipe.set("chat:epoch", new_epoch(), nx=True)
                pipe.get("chat:epoch")
                _, epoch = pipe.execute()
            return str(epoch)

        return self.call(read)

    def rename(self, session: Session, new: str, ref: RequestId | None) -> bool:
        old = session.nick
        assert old is not None
        key = self._session_key(session)
        if not self.run("RENAME", fold(old), fold(new), new, self.node, key, _EVENTS_CAP):
            return False
        self.hub.retag(session, new, ref)
        return True

    def remove(self, session: Session, reason: LeaveReason, *, tell: bool) -> None:
        # Other nodes go on, so their clients are told even when this one stops.
        nick = session.nick
        self.hub.forget(session)
        for token, pending in list(self.pending.items()):
            if pending.session is session:  # echoes that can no longer arrive
                self.pending.pop(token, None)
        if nick is None:
            return
        release = (fold(nick), self._session_key(session), reason.value)
        try:
            self.run("RELEASE", *release)
        except Unavailable:
            self.heartbeat.retry_later(release)

    def account(self, nick: str) -> str | None:
        value: str | None = self.call(lambda: self._redis.hget("chat:accounts", nick))
        return value

    def register(self, nick: str, password_hash: str) -> bool:
        self.call(lambda: self._redis.hset("chat:accounts", nick, password_hash))
        return True

    # -- rooms --------------------------------------------------------------------

    def join(self, session: Session, room: str, ref: RequestId | None) -> None:
        nick = session.nick
        assert nick is not None
        config = self._config
        reply = self.run("JOIN", room, fold(nick), nick, config.max_members)
        if not reply[0]:
            raise JoinRefused(room)
        topic, members = reply[1], list(reply[2:])
        while not self.hub.enter(
            session, room, ref=ref, topic=topic, members=members, max_frame=config.max_frame
        ):
            # This node does not follow the room yet: read where its stream stands, follow it.
            messages, older, top = self.page(room, before=None, after=None, limit=config.history)
            self.hub.follow(room, topic, messages, top, older=older)
            self.relay.wake(self._redis)

    def part(self, session: Session, room: str) -> bool:
        nick = session.nick
        assert nick is not None
        if room not in session.rooms:
            return False
        self.run("PART", room, fold(nick), nick, LeaveReason.PART.value)
        self.hub.withdraw(session, [room])
        return True

    def post(
        self, session: Session, room: str, text: str, ref: RequestId | None, key: str | None
    ) -> None:
        # Keys are not deduplicated in a cluster yet.
        self._posts.put(_Post(session, room, text, ref, self._token()))

    def set_topic(self, session: Session, room: str, topic: str, ref: RequestId | None) -> None:
        token = self._token()
        pending = Pending(session, ref, threading.Event())
        self.pending[token] = pending
        try:
            self.run("TOPIC", room, topic, session.nick, token)
        except Unavailable:
            self.pending.pop(token, None)
            raise
        assert pending.done is not None
        pending.done.wait(_TOPIC_WAIT)

    def direct(
        self, session: Session, to: str, text: str, ref: RequestId | None, key: str | None
    ) -> bool:
        ts = time.time_ns() // 1_000_000
        found = self.run("DIRECT", fold(to), session.nick, text, ts, _INBOX_CAP)
        if not found:
            return False
        event = DirectMessage(
            ref=ref, id=int(found[0]), nick=session.nick or "", to=found[1], text=text, ts=ts
        )
        self.hub.send(session, event)
        return True

    def room_list(self, after: str | None, limit: int) -> tuple[list[RoomInfo], bool]:
        def read() -> list[RoomInfo]:
            topics: dict[str, str] = self._redis.hgetall("chat:rooms")
            names = list(topics)
            with self._redis.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hlen(f"chat:members:{name}")
                sizes: list[int] = pipe.execute()
            return [
                RoomInfo(room=name, members=size, topic=topics[name])
                for name, size in zip(names, sizes, strict=True)
                if size
            ]

        rows = sorted(
            (r for r in self.call(read) if after is None or r.room > after), key=lambda r: r.room
        )
        return rows[:limit], len(rows) > limit

    def members(
        self, room: str, after: str | None, limit: int
    ) -> tuple[list[str], int, bool] | None:
        def read() -> list[str] | None:
            with self._redis.pipeline(transaction=True) as pipe:
                pipe.hexists("chat:rooms", room)
                pipe.hvals(f"chat:members:{room}")
                exists, nicks = pipe.execute()
            return list(nicks) if exists else None

        nicks = self.call(read)
        if nicks is None:
            return None
        rest = sorted((n for n in nicks if after is None or fold(n) > fold(after)), key=fold)
        return rest[:limit], len(nicks), len(rest) > limit

    def history(
        self, room: str, *, before: int | None, after: int | None, limit: int
    ) -> tuple[list[RoomMessage], bool] | None:
        if not self.call(lambda: self._redis.hexists("chat:rooms", room)):
            return None
        messages, more, _ = self.page(room, before=before, after=after, limit=limit)
        return messages, more

    def page(
        self, room: str, *, before: int | None, after: int | None, limit: int
    ) -> tuple[list[RoomMessage], bool, int]:
        """Up to `limit` messages of `room` after `after` (oldest first) or before
        `before`, whether more lie beyond, and the id of the stream's newest entry
        (when neither bound is given; else 0)."""
        key = f"chat:log:{room}"
        count = max(limit + 1, 64)
        found: list[RoomMessage] = []
        top = 0
        newest_first = after is None
        cursor = (
            f"({after}-0" if after is not None else f"({before}-0" if before is not None else "+"
        )
        read = self._redis.xrevrange if newest_first else self._redis.xrange
        end = "-" if newest_first else "+"
        while len(found) <= limit:
            entries: list[Entry] = self.call(partial(read, key, cursor, end, count))
            if entries and cursor == "+":
                top = entry_number(entries[0][0])
            found.extend(message_of(room, eid, f) for eid, f in entries if f.get("k") == "m")
            if len(entries) < count:
                break
            cursor = f"({entries[-1][0]}"
        more = len(found) > limit
        found = found[:limit]
        if newest_first:
            found.reverse()
        return found, more, top

    # -- the poster: room messages in batches, one script call each ---------------

    def _post_loop(self) -> None:
        get = self._posts.get
        while True:
            posts = [get()]
            while len(posts) < self._batch:
                try:
                    posts.append(self._posts.get_nowait())
                except queue.Empty:
                    break
            work = [p for p in posts if p is not None]
            if work:
                self._post(work)
            if None in posts:
                return

    def _post(self, posts: list[_Post]) -> None:
        args: list[object] = [time.time_ns() // 1_000_000]
        for post in posts:
            self.pending[post.token] = Pending(post.session, post.ref, None)
            args += [post.room, post.session.nick, post.text, post.token]
        try:
            self.run("POST", *args)
        except Exception as exc:
            for post in posts:
                self.pending.pop(post.token, None)
            outage = isinstance(exc, Unavailable)
            if outage:
                log.warning("Redis unreachable: %d messages not stored: %s", len(posts), exc)
            else:
                log_failure(log, "%d messages not stored", len(posts))
            for post in posts:
                self.hub.send(
                    post.session,
                    Error(
                        ref=post.ref,
                        code=(ErrorCode.UNAVAILABLE if outage else ErrorCode.INTERNAL_ERROR).value,
                        message="the message could not be stored; it was not sent",
                    ),
                )
