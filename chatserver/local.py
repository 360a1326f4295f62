"""The back end of a single server: the hub in memory, the sequencer and a store."""

from __future__ import annotations

import contextlib
import socket
import time

from chatproto import LeaveReason, RequestId, RoomInfo, RoomMessage
from chatserver.backend import Backend, JoinRefused
from chatserver.config import ServerConfig
from chatserver.hub import Hub
from chatserver.sequencer import NewAccount, NewRoom, Post, Sequencer, TopicChange
from chatserver.session import Session
from chatserver.store import Snapshot, Store

__all__ = ["LocalBackend"]


class LocalBackend(Backend):
    def __init__(self, config: ServerConfig, hub: Hub, store: Store, snapshot: Snapshot) -> None:
        self._config = config
        self.hub = hub
        self.store = store
        self._epoch = snapshot.epoch
        self.sequencer = Sequencer(hub, store, snapshot.next_id, keyed=snapshot.keyed)

    def start(self) -> None:
        self.sequencer.start()

    def stop(self) -> None:
        self.sequencer.stop()
        self.sequencer.join()

    def claim(self, session: Session, nick: str) -> bool:
        return self.hub.claim(session, nick)

    def resume(self, session: Session, nick: str, token: str) -> bool:
        ghost = self.hub.resume(session, nick, token)
        if ghost is None:
            return False
        # Wake the old connection's reader, which then ends it (its rooms now
        # belong to `session`, so nobody is told).
        with contextlib.suppress(OSError):
            ghost.sock.shutdown(socket.SHUT_RD)
        return True

    def epoch(self) -> str:
        return self._epoch

    def join(self, session: Session, room: str, ref: RequestId | None) -> None:
        if not self.hub.exists(room):
            # The store must learn of a room before anyone can see it: a `say` or
            # `topic` from another reader must not reach the sequencer first.
            # (Two first joins may both submit it; storing a room is idempotent.)
            self.sequencer.submit(NewRoom(room))
        config = self._config
        if not self.hub.join(session, room, ref, config.max_frame, config.max_members):
            raise JoinRefused(room)

    def part(self, session: Session, room: str) -> bool:
        return self.hub.part(session, room)

    def post(
        self, session: Session, room: str, text: str, ref: RequestId | None, key: str | None
    ) -> None:
        assert session.nick is not None
        self.sequencer.submit(Post(session, room, session.nick, text, ref, key))

    def set_topic(self, session: Session, room: str, topic: str, ref: RequestId | None) -> None:
        self.sequencer.complete(TopicChange(session, room, topic, ref))

    def direct(
        self, session: Session, to: str, text: str, ref: RequestId | None, key: str | None
    ) -> bool:
        return self.hub.direct(session, to, text, ts=time.time_ns() // 1_000_000, ref=ref, key=key)

    def rename(self, session: Session, new: str, ref: RequestId | None) -> bool:
        return self.hub.rename(session, new, ref)

    def room_list(self, after: str | None, limit: int) -> tuple[list[RoomInfo], bool]:
        return self.hub.room_list(after, limit)

    def members(
        self, room: str, after: str | None, limit: int
    ) -> tuple[list[str], int, bool] | None:
        return self.hub.members(room, after, limit)

    def history(
        self, room: str, *, before: int | None, after: int | None, limit: int
    ) -> tuple[list[RoomMessage], bool] | None:
        if not self.hub.exists(room):
            return None
        return self.store.history(room, before=before, after=after, limit=limit)

    def account(self, nick: str) -> str | None:
        return self.store.account(nick)

    def register(self, nick: str, password_hash: str) -> bool:
        account = NewAccount(nick, password_hash)
        self.sequencer.complete(account)
        return account.stored

    def remove(self, session: Session, reason: LeaveReason, *, tell: bool) -> None:
        self.hub.remove(session, reason, tell=tell)
