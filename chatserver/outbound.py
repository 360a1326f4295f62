"""The one writer thread: every connection's socket, from first send to close.

Any thread may queue frames for a connection (`Writer.push`, under the hub
lock, which makes queueing cheap and ordered); only the writer touches a
socket to send. It takes everything queued for a connection at once, joins it
into one buffer and hands it to a non-blocking `send`, so a busy connection
gets dozens of frames per system call. A connection whose socket is full
waits in the selector until it drains, and nobody else waits for it: the
limits of `outbox.py` drop a reader that fails to take what is sent.

Broadcasts are batched by `batching.BroadcastRun`; the end of a connection
(flush, half-close, linger, close within a grace time) is the writer's too.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from collections.abc import Iterable

from chatserver.batching import BroadcastRun
from chatserver.logs import log_failure
from chatserver.outbox import Outbox, QueueLimits

__all__ = ["Outbox", "Writer"]

log = logging.getLogger(__name__)


class Writer(threading.Thread):
    """Flushes every connection's queue to its non-blocking socket."""

    def __init__(
        self,
        lock: threading.Lock,
        *,
        soft_limit: int,
        hard_limit: int,
    ) -> None:
        super().__init__(name="chat-writer", daemon=True)
        self._lock = lock
        self.limits = QueueLimits(soft=soft_limit, hard=hard_limit)
        self._ready: list[Outbox] = []
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._woken = False
        self._stopping = False
        self._finishing: set[Outbox] = set()
        self._unclosed = 0  # finished boxes not yet closed, under the lock
        self._all_closed = threading.Condition(lock)
        self._run: BroadcastRun[Outbox] = BroadcastRun(self._queue)  # under the lock

    # -- called by other threads -------------------------------------------

    def push(self, box: Outbox, data: bytes) -> None:
        """Queue `data` for `box` (empty: just flush). The caller holds the hub lock,
        then calls `wake`."""
        if self._run.active:
            data = self._run.take_part(box) + data
        self._queue((box,), data)

    def push_many(self, boxes: Iterable[Outbox], data: bytes, skip: Outbox | None = None) -> None:
        """`push` the same bytes to many boxes (but `skip`): the broadcast path.

        A list of boxes joins the current run if it is the run's list (the same
        object: see `batching`, and never change such a list in place)."""
        if not self._run.broadcast(boxes, data, skip):
            self._queue(boxes, data, skip)

    def _queue(self, boxes: Iterable[Outbox], data: bytes, skip: Outbox | None = None) -> None:
        """Append `data` to each box's queue (but `skip`'s), under the hub lock."""
        limits = self.limits
        ready = self._ready
        for box in boxes:
            if box is skip or box.dropped or box.finishing:
                continue
            if box.append(data, limits):
                self._drop(box)
            if not box.scheduled:
                box.scheduled = True
                ready.append(box)

    def _drop(self, box: Outbox) -> None:
        # Under the hub lock: stop queueing, and let the writer say why (and log
        # it: nothing is logged under the lock).
        box.dropped = True
        box.drop_frame = box.farewell() or b""
        box.frames = []
        if not box.scheduled:
            box.scheduled = True
            self._ready.append(box)

    def drop_if_stale(self, box: Outbox, now: float, patience: float) -> bool:
        """Drop `box` if its reader has failed to take what was sent: above the soft
        limit for `patience` seconds, or past the hard one. Under the hub lock."""
        self._run.settle()
        if not box.overdue(self.limits, patience, now):
            return False
        self._drop(box)
        return True

    def finish(self, box: Outbox, grace: float) -> None:
        """The reader is done: flush what is queued (for at most `grace` s), then close."""
        with self._lock:
            self._run.settle()
            box.finishing = True
            self._unclosed += 1
            box.finish_by = time.monotonic() + grace
            if not box.scheduled:
                box.scheduled = True
                self._ready.append(box)
        self.wake()

    def wait_closed(self, timeout: float) -> bool:
        """Wait until every finished connection's socket is closed."""
        with self._all_closed:
            return self._all_closed.wait_for(lambda: self._unclosed == 0, timeout)

    def wake(self) -> None:
        if not self._woken:
            self._woken = True
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")

    def stop(self) -> None:
        self._stopping = True
        self.wake()

    # -- the writer thread -------------------------------------------------

    def run(self) -> None:
        while not (
            self._stopping and not self._finishing and not self._ready and not self._run.active
        ):
            try:
                self._round()
            except Exception:
                log_failure(log, "writer: round failed")
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _round(self) -> None:
        writable: list[Outbox] = []
        for key, _ in self._selector.select(0.25 if self._finishing else 1.0):
            if key.fileobj is self._wake_r:
                self._drain_wakeups()
            elif key.data.lingering:
                self._discard_input(key.data)
            else:
                writable.append(key.data)
        self._woken = False
        with self._lock:
            self._run.settle()
            ready, self._ready = self._ready, []
            for box in writable:
                box.blocked = False
            work = [(box, self._take(box)) for box in {*ready, *writable}]
        for box, frames in work:
            try:
                self._flush(box, frames)
            except Exception:
                # Cut the connection but leave the descriptor to the usual
                # close: its reader may still be using it.
                log_failure(log, "writer: failed to flush %s", box.label)
                self._break(box)
        if self._finishing:
            self._expire_finishing()

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass

    def _take(self, box: Outbox) -> list[bytes]:
        # Under the hub lock.
        box.scheduled = False
        if box.blocked or box.closed:
            return []
        frames = box.frames
        if frames:
            box.frames = []
        return frames

    def _flush(self, box: Outbox, frames: list[bytes]) -> None:
        if box.closed or box.lingering:
            # Lingering: all is sent and our side is shut; a late flush (the box
            # was scheduled again by `finish`) must not unwatch its input.
            return
        if box.drop_frame is not None:
            self._kill(box)
            frames = []
        # Read once: `finish` may set it while this runs, and the seal (which may
        # end a WebSocket with a close frame) must have seen the last flush.
        finishing = box.finishing
        if finishing:
            self._finishing.add(box)
        if box.blocked:
            return
        plain = b"".join(frames)
        if box.seal is not None:
            plain = box.seal(plain)
        data = box.pending + plain if plain else box.pending
        if data:
            try:
                sent = box.sock.send(data, socket.MSG_DONTWAIT)
            except BlockingIOError:
                sent = 0
            except OSError:
                self._break(box)
                return
            full = sent < len(data)
            box.record_send(sent, full=full, limits=self.limits, lock=self._lock)
            if full:
                box.pending = data[sent:]
                self._watch(box, True)
                return
            box.pending = b""
        self._watch(box, False)
        if finishing and not box.frames:
            self._linger(box)

    def _watch(self, box: Outbox, on: bool, events: int = selectors.EVENT_WRITE) -> None:
        if not on:
            events = 0
        if events == box.watching:
            return
        try:
            if not box.watching:
                self._selector.register(box.sock, events, box)
            elif events:
                self._selector.modify(box.sock, events, box)
            else:
                self._selector.unregister(box.sock)
        except (KeyError, ValueError, OSError):
            events = 0
        box.watching = events

    def _linger(self, box: Outbox) -> None:
        """Everything is sent: end our side, and read and discard until the peer
        closes too, so that unread input does not make the kernel answer with a
        reset that could destroy the last frames before the client reads them."""
        if box.lingering:
            return
        box.lingering = True
        try:
            box.sock.shutdown(socket.SHUT_WR)
            self._watch(box, True, selectors.EVENT_READ)
        except OSError:
            self._close(box)

    def _discard_input(self, box: Outbox) -> None:
        try:
            while box.sock.recv(65536, socket.MSG_DONTWAIT):
                pass
        except BlockingIOError:
            return
        except OSError:
            pass
        self._close(box)

    def _kill(self, box: Outbox) -> None:
        """Drop a slow consumer: its queue is gone, and after the frame in flight
        it gets only the reason, if it reads before the grace time runs out."""
        log.warning("%s: dropped as a slow consumer (%d bytes queued)", box.label, box.backlog)
        last = box.drop_frame or b""
        box.pending += box.seal(last) if box.seal is not None else last
        box.drop_frame = None
        # Wake the reader, which ends the session and calls finish().
        with contextlib.suppress(OSError):
            box.sock.shutdown(socket.SHUT_RD)

    def _break(self, box: Outbox) -> None:
        # Wake the connection's reader, which cleans up and then calls finish().
        self._watch(box, False)
        box.blocked = True
        with contextlib.suppress(OSError):
            box.sock.shutdown(socket.SHUT_RDWR)
        if box.finishing:
            self._close(box)

    def _expire_finishing(self) -> None:
        now = time.monotonic()
        for box in list(self._finishing):
            if box.closed:
                self._finishing.discard(box)
            elif now >= box.finish_by or (self._stopping and self._idle(box)):
                self._close(box)

    @staticmethod
    def _idle(box: Outbox) -> bool:
        # On the way down, stop waiting for a peer that is not sending: closing
        # now loses nothing it could still read.
        if not box.lingering:
            return box.blocked
        try:
            box.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True
        except OSError:
            return True
        return False

    def _close(self, box: Outbox) -> None:
        if box.closed:
            return
        self._watch(box, False)
        box.closed = True
        self._finishing.discard(box)
        with contextlib.suppress(OSError):
            box.sock.close()
        if box.finishing:
            with self._all_closed:
                self._unclosed -= 1
                self._all_closed.notify_all()
