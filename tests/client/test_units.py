"""The pure parts of the library: resume arithmetic, the queue, backoff, pacing."""

from __future__ import annotations

import pytest

from chatclient import ClientClosed, EventsDropped, ReconnectPolicy
from chatclient.cli import parse_args
from chatclient.inbox import Inbox
from chatclient.pacing import Pacer
from chatclient.resume import Tracker, missed
from chatproto import History, HistoryPage, Joined, RoomMessage
from tests.client.fakes import message


def joined(*ids: int) -> Joined:
    return Joined(room="lobby", topic="", members=[], history=[message(i) for i in ids])


class Pages:
    """A fake `fetch` over a room holding `ids`, serving `size` messages a page."""

    def __init__(self, ids: list[int], size: int) -> None:
        self.ids, self.size = ids, size
        self.asked: list[History] = []

    def __call__(self, command: History) -> HistoryPage:
        self.asked.append(command)
        if command.after is not None:
            newer = [i for i in self.ids if i > command.after]
            chosen, more = newer[: self.size], len(newer) > self.size
        else:
            older = [i for i in self.ids if command.before is None or i < command.before]
            chosen, more = older[-self.size :], len(older) > self.size
        return HistoryPage(room="lobby", messages=[message(i) for i in chosen], more=more)


def ids(messages: list[RoomMessage]) -> list[int]:
    return [m.id for m in messages]


def test_missed_uses_the_joined_history_when_it_reaches_back() -> None:
    fetch = Pages([], 2)
    assert ids(missed("lobby", 5, joined(4, 5, 7, 8), fetch)) == [7, 8]
    assert fetch.asked == []


def test_missed_pages_forward_from_the_last_id_seen() -> None:
    fetch = Pages([3, 5, 6, 8, 9, 11, 12], 2)
    assert ids(missed("lobby", 3, joined(11, 12), fetch)) == [5, 6, 8, 9, 11, 12]
    assert [c.after for c in fetch.asked] == [3, 6, 9]


def test_missed_when_the_room_was_empty_takes_everything() -> None:
    fetch = Pages([1, 2, 3, 4, 5], 2)
    assert ids(missed("lobby", 0, joined(4, 5), fetch)) == [1, 2, 3, 4, 5]
    assert [c.before for c in fetch.asked] == [4, 2]
    assert ids(missed("lobby", 0, joined(), Pages([], 2))) == []


def test_tracker_filters_duplicates_per_room() -> None:
    tracker = Tracker()
    tracker.joined(joined(3))
    assert tracker.resume_point("lobby") == 3
    assert not tracker.fresh(message(3))
    assert tracker.fresh(message(4)) and not tracker.fresh(message(4))
    assert tracker.fresh(message(1, room="dev"))  # untracked rooms pass
    tracker.forget("lobby")
    assert tracker.resume_point("lobby") == 0


def test_inbox_marks_the_gap_where_events_were_dropped() -> None:
    inbox = Inbox(2)
    events = [message(i) for i in range(1, 6)]
    assert [inbox.put(e) for e in events[:4]] == [True, True, False, False]
    assert inbox.get(0) == events[0]
    assert inbox.put(events[4])  # room again: the marker goes in first
    assert [inbox.get(0) for _ in range(3)] == [events[1], EventsDropped(2), events[4]]
    assert inbox.dropped == 2
    with pytest.raises(TimeoutError):
        inbox.get(0.01)
    inbox.finish(ClientClosed("closed"))
    with pytest.raises(ClientClosed):
        inbox.get()
    assert not inbox.put(events[0])


def test_backoff_grows_to_its_cap() -> None:
    policy = ReconnectPolicy(initial=1.0, maximum=5.0, factor=2.0, jitter=0.0)
    delays = policy.delays()
    assert [next(delays) for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    jittery = ReconnectPolicy(initial=1.0, maximum=1.0, jitter=0.5).delays()
    spread = [next(jittery) for _ in range(50)]
    assert all(0.5 <= d <= 1.0 for d in spread) and len(set(spread)) > 1
    with pytest.raises(ValueError):
        ReconnectPolicy(initial=2.0, maximum=1.0)


def test_pacer_allows_half_the_burst_then_the_rate() -> None:
    pacer = Pacer()
    assert pacer.reserve() == 0  # not configured: no limit
    pacer.configure(rate=10.0, burst=4)
    assert [pacer.reserve() for _ in range(2)] == [0.0, 0.0]
    waits = [pacer.reserve() for _ in range(3)]
    assert waits == sorted(waits) and 0.05 < waits[0] <= 0.1 and waits[2] > 0.25


def test_fallbacks_are_read_as_host_and_port() -> None:
    args = parse_args(["--fallback", "127.0.0.1:7879", "--fallback", "localhost:7880"])
    assert args.fallback == [("127.0.0.1", 7879), ("localhost", 7880)]
    for bad in ("7879", "host:", ":7879", "host:port"):
        with pytest.raises(SystemExit):
            parse_args(["--fallback", bad])


def test_help_names_the_protocol_version_and_the_room_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "PROTOCOL.md 1.3" in out
    assert "room to join at start (lobby)" in out
    assert "--backlog" in out
