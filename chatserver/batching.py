"""The broadcast run: consecutive broadcasts to one room, handed over as one buffer.

Consecutive broadcasts to the same list of recipients form a run: their frames
are kept once, in order, and handed to each recipient as one joined buffer when
another list is broadcast to, a recipient gets something of its own, or the
run is settled. So a batch of messages costs one step per member rather than
one per member and message.

The rule that makes this cheap is list identity: a broadcast joins the run
only if it goes to *the same list object*. A list passed to `broadcast` must
therefore never be changed in place afterwards; whoever owns it makes a new
list when the recipients change (the hub does so for a room whose members
change). Anything that is not a list is delivered at once.

A recipient that gets a frame of its own in the middle of a run (a sender,
whose echo replaces its message) first gets its part of the run so far, so
that it sees everything in the order it was queued; a recipient that was
skipped by one broadcast of the run gets the rest without it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

__all__ = ["BroadcastRun"]

B = TypeVar("B", bound=Hashable)

Deliver = Callable[[Iterable[B], bytes], None]


class BroadcastRun(Generic[B]):
    """Collects a run and delivers it through `deliver(recipients, data)`.

    Not thread-safe: the caller holds the lock that orders its queues."""

    def __init__(self, deliver: Deliver[B]) -> None:
        self._deliver = deliver
        self._boxes: list[B] | None = None  # the list the run goes to
        self._members: set[B] | None = None  # made when first needed
        self._frames: list[bytes] = []
        # For each recipient that got something else: the index of the first
        # frame not yet delivered to it, and the indexes of those it skips.
        self._edits: dict[B, tuple[int, tuple[int, ...]]] = {}

    @property
    def active(self) -> bool:
        return self._boxes is not None

    def broadcast(self, boxes: Iterable[B], data: bytes, skip: B | None = None) -> bool:
        """Add `data` for `boxes` (but `skip`) to the run; False if `boxes` is not a
        list, which cannot join a run: the caller delivers it itself, now."""
        if boxes is not self._boxes:
            self.settle()
            if type(boxes) is not list:
                return False
            self._boxes = boxes
        frames = self._frames
        if skip is not None:
            done, skips = self._edits.get(skip, (0, ()))
            self._edits[skip] = (done, (*skips, len(frames)))
        frames.append(data)
        return True

    def take_part(self, box: B) -> bytes:
        """What the run holds for `box` so far, now marked delivered: the caller
        puts it in front of a frame of `box`'s own."""
        if self._boxes is None:
            return b""
        members = self._members
        if members is None:
            members = self._members = set(self._boxes)
        if box not in members:
            return b""
        done, skips = self._edits.get(box, (0, ()))
        frames = self._frames
        self._edits[box] = (len(frames), ())
        return _part(frames, done, skips)

    def settle(self) -> None:
        """Deliver the rest of the run to each of its recipients, and end it."""
        boxes = self._boxes
        if boxes is None:
            return
        frames, edits, members = self._frames, self._edits, self._members
        self._boxes = self._members = None
        self._frames = []
        self._edits = {}
        joined = frames[0] if len(frames) == 1 else b"".join(frames)
        if not edits:
            self._deliver(boxes, joined)
            return
        self._deliver([box for box in boxes if box not in edits], joined)
        if members is None:
            members = set(boxes)
        for box, (done, skips) in edits.items():
            if box in members:  # a sender outside the room is only left out
                rest = _part(frames, done, skips)
                if rest:
                    self._deliver((box,), rest)


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
