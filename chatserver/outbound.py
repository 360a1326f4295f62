"""Send queues and the one writer thread that drains them.

Any thread may queue frames for a connection (`Writer.push`, under the hub
lock, which makes queueing cheap and ordered); only the writer touches a
socket to send. It takes everything queued for a connection at once, joins it
into one buffer and hands it to a non-blocking `send`, so a busy connection
gets dozens of frames per system call. A connection whose socket is full
waits in the selector until it drains, and nobody else waits for it: past
the hard limit, or above the soft limit for too long, it is dropped.

Consecutive broadcasts to the same room (the same list of boxes) form a run:
their frames are kept once, in order, and handed to each member as one joined
buffer when another list is broadcast to, a box changes state, or the writer
takes the queues; the few members that get something else in between (a
sender, whose echo replaces its message) are served their part of the run
first. So a batch of messages costs one step per member rather than one per
member and message.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable

from chatserver.logs import log_failure

__all__ = ["Outbox", "Writer"]

log = logging.getLogger(__name__)


class Outbox:
    """One connection's send queue and sending state.

    `farewell` gives the last frame to send if the connection is dropped.

    `frames`, `queued` and `scheduled` are guarded by the hub lock; `pending`
    (the unsent tail of the last send), `sent` and `blocked` belong to the
    writer thread.
    """

    __slots__ = (
        "blocked",
        "closed",
        "drop_frame",
        "dropped",
        "farewell",
        "finish_by",
        "finishing",
        "frames",
        "label",
        "lingering",
        "pending",
        "queued",
        "scheduled",
        "seal",
        "sent",
        "sock",
        "soft_since",
        "watching",
    )

    def __init__(
        self, sock: socket.socket, label: str, farewell: Callable[[], bytes | None]
    ) -> None:
        self.sock = sock
        self.label = label
        self.farewell = farewell
        self.frames: list[bytes] = []
        self.queued = 0
        self.sent = 0
        self.scheduled = False
        self.pending = b""
        self.blocked = False
        self.soft_since: float | None = None
        self.dropped = False
        self.drop_frame: bytes | None = None
        self.finishing = False
        self.finish_by = 0.0
        self.lingering = False
        self.watching = 0  # the selector events registered for this socket
        self.closed = False
        self.seal: Callable[[bytes], bytes] | None = None  # encrypts, on a TLS connection

    @property
    def backlog(self) -> int:
        """Bytes queued and not yet taken by the kernel."""
        return self.queued - self.sent


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
        self._soft = soft_limit
        self._hard = hard_limit
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
        # The broadcast run, under the lock: the list of boxes it goes to, its
        # frames, and for each box that gets something else: the index of the
        # first frame not yet queued for it, and the indexes of those it skips.
        self._run: list[Outbox] | None = None
        self._run_members: set[Outbox] | None = None  # made when first needed
        self._run_frames: list[bytes] = []
        self._run_edits: dict[Outbox, tuple[int, tuple[int, ...]]] = {}

    # -- called by other threads -------------------------------------------

    def push(self, box: Outbox, data: bytes) -> None:
        """Queue `data` for `box` (empty: just flush). The caller holds the hub lock,
        then calls `wake`."""
        if self._run is not None:
            members = self._run_members
            if members is None:
                members = self._run_members = set(self._run)
            if box in members:
                # What the run holds for it so far comes first.
                done, skips = self._run_edits.get(box, (0, ()))
                frames = self._run_frames
                self._run_edits[box] = (len(frames), ())
                data = _part(frames, done, skips) + data
        self._queue((box,), data)

    def push_many(self, boxes: Iterable[Outbox], data: bytes, skip: Outbox | None = None) -> None:
        """`push` the same bytes to many boxes (but `skip`): the broadcast path.

        A list of boxes joins the run if it is the run's list (the same object:
        a list passed here must not be changed in place afterwards; the hub
        makes a new one for a room whose members change)."""
        if boxes is not self._run:
            self._settle()
            if type(boxes) is not list:
                self._queue(boxes, data, skip)
                return
            self._run = boxes
        frames = self._run_frames
        if skip is not None:
            done, skips = self._run_edits.get(skip, (0, ()))
            self._run_edits[skip] = (done, (*skips, len(frames)))
        frames.append(data)

    def _settle(self) -> None:
        """Hand the rest of the run to its boxes (under the hub lock)."""
        boxes = self._run
        if boxes is None:
            return
        frames, edits, members = self._run_frames, self._run_edits, self._run_members
        self._run = self._run_members = None
        self._run_frames = []
        self._run_edits = {}
        joined = frames[0] if len(frames) == 1 else b"".join(frames)
        if not edits:
            self._queue(boxes, joined)
            return
        self._queue([box for box in boxes if box not in edits], joined)
        if members is None:
            members = set(boxes)
        for box, (done, skips) in edits.items():
            if box in members:  # a sender outside the room is only left out
                rest = _part(frames, done, skips)
                if rest:
                    self._queue((box,), rest)

    def _queue(self, boxes: Iterable[Outbox], data: bytes, skip: Outbox | None = None) -> None:
        """Append `data` to each box's queue (but `skip`'s), kept tight."""
        size = len(data)
        soft = self._soft
        ready = self._ready
        for box in boxes:
            if box is skip or box.dropped or box.finishing:
                continue
            box.frames.append(data)
            queued = box.queued + size
            box.queued = queued
            if queued - box.sent > soft:
                self._over_soft(box)
            if not box.scheduled:
                box.scheduled = True
                ready.append(box)

    def _over_soft(self, box: Outbox) -> None:
        if box.queued - box.sent > self._hard:
            self._drop(box)
        elif box.soft_since is None:
            box.soft_since = time.monotonic()

    def _drop(self, box: Outbox) -> None:
        # Under the hub lock: stop queueing, and let the writer say why.
        log.warning("%s: dropped as a slow consumer (%d bytes queued)", box.label, box.backlog)
        box.dropped = True
        box.drop_frame = box.farewell() or b""
        box.frames = []
        if not box.scheduled:
            box.scheduled = True
            self._ready.append(box)

    def drop_if_stale(self, box: Outbox, now: float, patience: float) -> bool:
        """Drop `box` if it has been above the soft limit for `patience` seconds."""
        self._settle()
        since = box.soft_since
        if since is None or now - since < patience or box.dropped:
            return False
        self._drop(box)
        return True

    def finish(self, box: Outbox, grace: float) -> None:
        """The reader is done: flush what is queued (for at most `grace` s), then close."""
        with self._lock:
            self._settle()
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
            self._stopping and not self._finishing and not self._ready and self._run is None
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
            self._settle()
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
            box.sent += sent
            if sent < len(data):
                box.pending = data[sent:]
                box.blocked = True
                self._watch(box, True)
                return
            box.pending = b""
            if box.soft_since is not None and box.queued - box.sent <= self._soft:
                box.soft_since = None
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


def _part(frames: list[bytes], start: int, skips: tuple[int, ...]) -> bytes:
    """`frames` from index `start` on, but those at the indexes `skips`, joined."""
    if not skips:
        return b"".join(frames[start:])
    out: list[bytes] = []
    for index in skips:
        out.extend(frames[start:index])
        start = index + 1
    out.extend(frames[start:])
    return b"".join(out)
