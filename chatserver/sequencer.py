"""The sequencer: the one thread that numbers, stores and fans out room messages.

Readers hand it `say` and `topic` commands through a bounded queue. It takes
them in batches, gives each message the next id, commits the whole batch to
the store in one transaction, and only then queues the messages for the
rooms' members, in id order, under the hub lock. So every member sees a room
in the same order, and an echo never reaches a sender before its message is
durable. A full queue makes the readers wait, which slows the senders, not
the receivers.

A `say` with an idempotency key that its nick sent lately is not stored
again: its sender gets the original message as the echo. The sequencer alone
reads and writes those keys, in the order of its queue, so that a retry that
overtakes nothing and a duplicate in the same batch are both caught.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field

from chatproto import Error, ErrorCode, RequestId, RoomMessage
from chatserver.hub import Hub, fold
from chatserver.keys import RecentKeys
from chatserver.logs import log_failure
from chatserver.session import Session
from chatserver.store import Batch, KeyedMessage, Store

__all__ = ["NewAccount", "NewRoom", "Post", "Sequencer", "TopicChange"]

log = logging.getLogger(__name__)

_BATCH = 256
_KEY_MS = 600_000  # how long a key is honoured at least, in ms


@dataclass(frozen=True, slots=True)
class Post:
    session: Session
    room: str
    nick: str
    text: str
    ref: RequestId | None
    key: str | None = None


@dataclass(frozen=True, slots=True)
class _Sent:
    """Where a keyed message went: enough to find it again."""

    room: str
    id: int
    ts: int


@dataclass(frozen=True, slots=True)
class _Retry:
    """A keyed `say` sent before: answered with the original message."""

    post: Post
    sent: _Sent


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
    def __init__(
        self,
        hub: Hub,
        store: Store,
        next_id: int,
        *,
        capacity: int = 4096,
        keyed: list[KeyedMessage] | None = None,
    ) -> None:
        super().__init__(name="chat-sequencer", daemon=True)
        self._hub = hub
        self._store = store
        self._next_id = next_id
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=capacity)
        self.keys: RecentKeys[_Sent] = RecentKeys()
        for k in keyed or ():
            self.keys.put(k.nick, k.key, _Sent(k.room, k.id, k.ts), len(k.room))

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
        ordered: list[tuple[RoomMessage, Post] | TopicChange | _Retry] = []
        for item in items:
            if isinstance(item, Post):
                if item.key is not None:
                    sent = self._sent(fold(item.nick), item.key)
                    if sent is not None:
                        ordered.append(_Retry(item, sent))
                        continue
                message = RoomMessage.model_construct(
                    id=self._next_id, room=item.room, nick=item.nick, text=item.text, ts=ts
                )
                self._next_id += 1
                batch.messages.append(message)
                ordered.append((message, item))
                if item.key is not None:
                    scope = (fold(item.nick), item.key)
                    batch.keys[message.id] = scope
                    self.keys.put(*scope, _Sent(item.room, message.id, ts), len(item.room))
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
            for nick, key in batch.keys.values():
                self.keys.discard(nick, key)
            self._refuse(items)
            return
        for item in items:
            if isinstance(item, NewAccount):
                item.stored = True
        originals = self._originals(batch, ordered)
        hub = self._hub
        with hub.lock:
            for entry in ordered:
                if isinstance(entry, TopicChange):
                    nick = entry.session.nick or ""
                    hub.publish_topic(entry.room, entry.topic, nick, entry.session, entry.ref)
                elif isinstance(entry, _Retry):
                    echo = originals[entry.sent.id].model_copy(update={"ref": entry.post.ref})
                    hub.deliver(entry.post.session, echo)
                else:
                    message, post = entry
                    hub.publish(message, post.session, post.ref)
        hub.writer.wake()

    def _sent(self, nick: str, key: str) -> _Sent | None:
        """Where the message `nick` sent with `key` went, if it was sent lately."""
        sent = self.keys.get(nick, key)
        if sent is None and not self.keys.complete():
            # The budget pushed out recent keys: the store may still know this one.
            found = self._store.keyed(nick, key)
            if found is not None and found.ts >= time.time_ns() // 1_000_000 - _KEY_MS:
                sent = _Sent(found.room, found.id, found.ts)
        return sent

    def _originals(
        self, batch: Batch, ordered: list[tuple[RoomMessage, Post] | TopicChange | _Retry]
    ) -> dict[int, RoomMessage]:
        """The messages that retries in this batch are answered with, read before
        the hub lock is taken (a retry of an earlier batch is read from the store)."""
        found: dict[int, RoomMessage] = {}
        for entry in ordered:
            if not isinstance(entry, _Retry) or entry.sent.id in found:
                continue
            sent = entry.sent
            message = next((m for m in batch.messages if m.id == sent.id), None)
            if message is None:
                message = self._store.message(sent.room, sent.id)
            if message is None:
                # No longer kept (a memory store's oldest): the same id and time,
                # with the text of the retry, which a client sends unchanged.
                post = entry.post
                message = RoomMessage.model_construct(
                    id=sent.id, room=sent.room, nick=post.nick, text=post.text, ts=sent.ts
                )
            found[sent.id] = message
        return found

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
