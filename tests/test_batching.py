"""The broadcast run: whatever the mix of broadcasts and own frames, each recipient
gets exactly its frames, in the order they were queued, and a run costs one
delivery per recipient."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from hypothesis import given
from hypothesis import strategies as st

from chatserver.batching import BroadcastRun

Received = dict[str, list[bytes]]


class _Sink:
    def __init__(self) -> None:
        self.got: Received = defaultdict(list)
        self.deliveries = 0

    def deliver(self, boxes: Iterable[str], data: bytes) -> None:
        for box in boxes:
            self.deliveries += 1
            self.got[box].append(data)


def test_consecutive_broadcasts_to_one_list_are_one_delivery_each() -> None:
    sink = _Sink()
    run: BroadcastRun[str] = BroadcastRun(sink.deliver)
    room = ["a", "b", "c"]
    for n in range(10):
        assert run.broadcast(room, b"m%d;" % n)
    run.settle()
    assert sink.deliveries == 3
    assert {box: b"".join(parts) for box, parts in sink.got.items()} == {
        box: b"".join(b"m%d;" % n for n in range(10)) for box in room
    }


def test_an_equal_but_different_list_starts_a_new_run() -> None:
    # The identity rule: a copy of the list is another audience.
    sink = _Sink()
    run: BroadcastRun[str] = BroadcastRun(sink.deliver)
    room = ["a", "b"]
    run.broadcast(room, b"1")
    run.broadcast(list(room), b"2")
    assert sink.got == {"a": [b"1"], "b": [b"1"]}  # the first run was settled
    run.settle()
    assert sink.got == {"a": [b"1", b"2"], "b": [b"1", b"2"]}


def test_a_list_changed_in_place_is_the_callers_bug() -> None:
    # Why the hub makes a new list when members change: a list changed in place
    # keeps its run, and the new member gets frames queued before it joined.
    sink = _Sink()
    run: BroadcastRun[str] = BroadcastRun(sink.deliver)
    room = ["a"]
    run.broadcast(room, b"before;")
    room.append("b")
    run.broadcast(room, b"after;")
    run.settle()
    assert sink.got["b"] == [b"before;after;"]


def test_what_is_not_a_list_is_left_to_the_caller() -> None:
    sink = _Sink()
    run: BroadcastRun[str] = BroadcastRun(sink.deliver)
    room = ["a"]
    run.broadcast(room, b"1")
    assert not run.broadcast(("a", "b"), b"2")
    assert sink.got == {"a": [b"1"]}  # settled first, so order holds
    assert not run.active


# A model: operations on two rooms that share a member, and own frames.
ROOMS = {"x": ["a", "b", "c"], "y": ["c", "d"]}
BOXES = ("a", "b", "c", "d", "e")  # "e" is in no room
OPS = st.one_of(
    st.tuples(
        st.just("broadcast"), st.sampled_from(sorted(ROOMS)), st.sampled_from((None, *BOXES))
    ),
    st.tuples(st.just("own"), st.sampled_from(BOXES), st.none()),
    st.tuples(st.just("settle"), st.none(), st.none()),
)


@given(st.lists(OPS, max_size=40))
def test_every_recipient_gets_its_frames_in_order(
    ops: list[tuple[str, str | None, str | None]],
) -> None:
    sink = _Sink()
    run: BroadcastRun[str] = BroadcastRun(sink.deliver)
    lists = {name: list(members) for name, members in ROOMS.items()}
    expected: Received = defaultdict(list)
    for n, (op, target, skip) in enumerate(ops):
        frame = b"%d;" % n
        if op == "broadcast":
            assert target is not None
            run.broadcast(lists[target], frame, skip)
            for box in lists[target]:
                if box != skip:
                    expected[box].append(frame)
        elif op == "own":
            assert target is not None
            sink.deliver((target,), run.take_part(target) + frame)
            expected[target].append(frame)
        else:
            run.settle()
    run.settle()
    got = {box: b"".join(parts) for box, parts in sink.got.items() if b"".join(parts)}
    assert got == {box: b"".join(parts) for box, parts in expected.items() if parts}
