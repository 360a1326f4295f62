"""The sequencer: the one thread that numbers, stores and fans out room messages.

Readers hand it `say` and `topic` commands through a bounded queue. It takes
them in batches, gives each message the next id, commits the whole batch to
the store in one transaction, and only then queues the messages for the
rooms' members, in id order, under the hub lock. So every member sees a room
in the same order, and an echo never reaches a sender before its message is
durable. A full queue makes the readers wait, which slows the senders, not
the receivers.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field

from chatproto import Error, ErrorCode, RequestId, RoomMessage
from chatserver.hub import Hub
from chatserver.logs import log_failure
from chatserver.session import Session
from chatserver.store import Batch, Store

__all__ = ["NewAccount", "NewRoom", "Post", "Sequencer", "TopicChange"]

log = logging.getLogger(__name__)

_BATCH = 256


@dataclass(frozen=True, slots=True)
class Post:
    session: Session
    room: str
    nick: str
    text: str
    ref: RequestId | None


@dataclass(frozen=True, slots=True)
class TopicChange:
    session: Session
    room: str
    topic: str
    ref: RequestId | None
    # Set once the change is published (or refused): its reply is queued.
    done: threading.Event = field(default_factory=threading.Event, compare=False)


@dataclass(frozen=True, slots=True)
class NewRoom:
    room: str


@dataclass(slots=True)
class NewAccount:
    nick: str  # folded
    hash: str
    stored: bool = False
    done: threading.Event = field(default_factory=threading.Event, compare=False)


_Work = Post | TopicChange | NewRoom | NewAccount
_Item = _Work | None


class Sequencer(threading.Thread):
    def __init__(self, hub: Hub, store: Store, next_id: int, *, capacity: int = 4096) -> None:
        super().__init__(name="chat-sequencer", daemon=True)
        self._hub = hub
        self._store = store
        self._next_id = next_id
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=capacity)

    def submit(self, item: _Work) -> None:
        """Queue work, waiting while the queue is full."""
        self._queue.put(item)

    def complete(self, item: TopicChange | NewAccount) -> None:
        """Queue work and wait until it is done (or the sequencer is gone)."""
        self._queue.put(item)
        while not item.done.wait(0.5) and self.is_alive():
            pass

    def stop(self) -> None:
        """Finish what is queued, then end."""
        self._queue.put(None)

    def run(self) -> None:
        get = self._queue.get
        while True:
            items = [get()]
            while len(items) < _BATCH:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = None in items
            work = [item for item in items if item is not None]
            if work:
                try:
                    self._process(work)
                finally:
                    for item in work:
                        if isinstance(item, TopicChange | NewAccount):
                            item.done.set()
            if stop:
                return

    def _process(self, items: list[_Work]) -> None:
        batch = Batch()
        ts = time.time_ns() // 1_000_000
        ordered: list[tuple[RoomMessage, Post] | TopicChange] = []
        for item in items:
            if isinstance(item, Post):
                message = RoomMessage.model_construct(
                    id=self._next_id, room=item.room, nick=item.nick, text=item.text, ts=ts
                )
                self._next_id += 1
                batch.messages.append(message)
                ordered.append((message, item))
            elif isinstance(item, TopicChange):
                batch.topics[item.room] = item.topic
                ordered.append(item)
            elif isinstance(item, NewAccount):
                batch.accounts[item.nick] = item.hash
            else:
                batch.rooms.append(item.room)
        try:
            self._store.commit(batch)
        except Exception:
            # Nothing of this batch is acknowledged; its senders are told.
            log_failure(log, "store commit failed; %d messages not stored", len(batch.messages))
            self._refuse(items)
            return
        for item in items:
            if isinstance(item, NewAccount):
                item.stored = True
        hub = self._hub
        with hub.lock:
            for entry in ordered:
                if isinstance(entry, TopicChange):
                    nick = entry.session.nick or ""
                    hub.publish_topic(entry.room, entry.topic, nick, entry.session, entry.ref)
                else:
                    message, post = entry
                    hub.publish(message, post.session, post.ref)
        hub.writer.wake()

    def _refuse(self, items: list[_Work]) -> None:
        for item in items:
            if isinstance(item, Post | TopicChange):
                self._hub.send(
                    item.session,
                    Error(
                        ref=item.ref,
                        code=ErrorCode.INTERNAL_ERROR.value,
                        message="the message could not be stored; it was not sent",
                    ),
                )
