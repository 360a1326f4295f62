"""A connection's send queue and its limits, at the mechanism: what the reader failed
to take is judged, not what was produced at once; the soft-limit timer is set and
cleared under one lock, so a queue above the soft limit always has one running."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from chatserver.outbox import Outbox, QueueLimits

LIMITS = QueueLimits(soft=1000, hard=4000, stall=0.05)


@pytest.fixture
def box() -> Iterator[Outbox]:
    a, b = socket.socketpair()
    try:
        yield Outbox(a, "test", lambda: None)
    finally:
        a.close()
        b.close()


def test_a_burst_far_past_the_hard_limit_is_not_dropped_while_the_socket_takes_it(
    box: Outbox,
) -> None:
    assert not box.append(b"x" * 100 * LIMITS.hard, LIMITS)
    assert box.soft_since is not None  # above the soft limit: timed, not dropped


def test_past_the_hard_limit_a_full_socket_is_dropped_once_it_has_stalled(box: Outbox) -> None:
    lock = threading.Lock()
    box.append(b"x" * LIMITS.hard, LIMITS)
    box.record_send(100, full=True, limits=LIMITS, lock=lock)  # took a little: progress
    assert not box.append(b"x" * LIMITS.hard, LIMITS)  # not stalled yet
    time.sleep(LIMITS.stall * 2)
    assert box.append(b"x", LIMITS)
    assert box.overdue(LIMITS, patience=60.0, now=time.monotonic())


def test_a_socket_that_keeps_taking_is_never_stalled(box: Outbox) -> None:
    lock = threading.Lock()
    for _ in range(5):
        box.append(b"x" * LIMITS.hard * 2, LIMITS)
        time.sleep(LIMITS.stall * 2)
        box.record_send(LIMITS.hard, full=True, limits=LIMITS, lock=lock)
        assert not box.append(b"x", LIMITS)


def test_the_soft_timer_is_cleared_when_the_backlog_is_back_under(box: Outbox) -> None:
    lock = threading.Lock()
    box.append(b"x" * 2 * LIMITS.soft, LIMITS)
    since = box.soft_since
    assert since is not None
    assert box.overdue(LIMITS, patience=0.0, now=since)
    box.record_send(2 * LIMITS.soft, full=False, limits=LIMITS, lock=lock)
    assert box.soft_since is None
    assert not box.overdue(LIMITS, patience=0.0, now=time.monotonic())


def test_the_writer_clears_the_timer_only_under_the_lock(box: Outbox) -> None:
    """The race of issue 11 item 11: the writer must not clear a timer that an
    enqueuer, holding the lock, has just made necessary again."""
    lock = threading.Lock()
    box.append(b"x" * 2 * LIMITS.soft, LIMITS)
    with lock:
        writer = threading.Thread(
            target=box.record_send,
            args=(2 * LIMITS.soft,),
            kwargs={"full": False, "limits": LIMITS, "lock": lock},
        )
        writer.start()
        writer.join(0.2)
        assert writer.is_alive(), "the writer changed the timer without the lock"
        box.append(b"x" * 2 * LIMITS.soft, LIMITS)  # above the soft limit again
    writer.join(5)
    assert box.backlog > LIMITS.soft
    assert box.soft_since is not None


def test_stress_a_queue_above_the_soft_limit_always_has_a_timer(box: Outbox) -> None:
    lock = threading.Lock()
    stop = threading.Event()
    violations: list[int] = []
    rng = random.Random(11)

    def enqueue() -> None:
        while not stop.is_set():
            with lock:
                box.append(b"x" * rng.randrange(1, 600), LIMITS)

    def write() -> None:
        for _ in range(20_000):
            with lock:
                box.frames = []
                backlog = box.backlog
            box.record_send(
                rng.randrange(0, backlog + 1),
                full=bool(rng.getrandbits(1)),
                limits=LIMITS,
                lock=lock,
            )
        stop.set()

    def check() -> None:
        while not stop.is_set():
            with lock:
                if box.backlog > LIMITS.soft and box.soft_since is None:
                    violations.append(box.backlog)

    threads = [threading.Thread(target=f) for f in (enqueue, enqueue, write, check)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert violations == []
    assert box.sent > 0
