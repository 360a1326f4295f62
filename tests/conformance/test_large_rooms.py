"""Since 1.3: rooms of any size.

`members` and `rooms` page with a cursor; `joined` carries the first page of
members and the count; in a room with more than `limits.large_room` members,
arrivals and departures are summarised as `member_count`, and `renamed` goes
only to those sharing a room that is not large.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from tests.conformance.wire import Clients, Frame, Target, Wire, unique_nick, unique_room

LARGE = 3  # the threshold of the dedicated server


def _fold_sorted(nicks: list[str]) -> list[str]:
    return sorted(nicks, key=str.lower)


def test_members_pages_in_folded_order(clients: Clients) -> None:
    room = unique_room()
    tags = ["b", "A", "d", "C", "e"]
    wires = [clients.login(room, nick=unique_nick(tag)) for tag in tags]
    everyone = _fold_sorted([w.nick for w in wires])
    asker = wires[0]
    whole = asker.request({"type": "members", "room": room})
    assert whole["members"] == everyone and whole["count"] == 5 and whole["more"] is False
    seen: list[str] = []
    after: str | None = None
    while True:
        ask: Frame = {"type": "members", "room": room, "limit": 2}
        if after is not None:
            ask["after"] = after
        page = asker.request(ask)
        assert page["count"] == 5
        assert len(page["members"]) <= 2
        seen += page["members"]
        if not page["more"]:
            break
        after = page["members"][-1].swapcase()  # the cursor compares folded
    assert seen == everyone


def test_rooms_pages_in_name_order(clients: Clients) -> None:
    prefix = unique_room("p")[:24]
    names = [f"{prefix}-{c}" for c in "dbca"]
    wire = clients.login(*names)
    seen: list[str] = []
    after = f"{prefix}-"  # just before the first of ours
    while True:
        page = wire.request({"type": "rooms", "after": after, "limit": 2})
        assert len(page["rooms"]) <= 2
        rows = [r["room"] for r in page["rooms"]]
        assert rows == sorted(rows)
        assert all(r > after for r in rows)
        seen += [r for r in rows if r.startswith(prefix)]
        if not page["more"] or not rows or not rows[-1].startswith(prefix):
            break
        after = rows[-1]
    assert seen == sorted(names)


def test_joined_says_whether_older_messages_exist(clients: Clients) -> None:
    room = unique_room()
    talker = clients.login(room)
    kept = talker.limits["history"]
    talker.need(kept + 3)
    fresh = clients.login()
    assert fresh.join(room)["more"] is False, "an empty room has no older messages"
    for n in range(kept):
        talker.say(room, f"m{n}")
    joined = clients.login().join(room)
    assert len(joined["history"]) == kept and joined["more"] is False
    talker.say(room, "one too many")
    joined = clients.login().join(room)
    assert joined["more"] is True
    assert joined["history"][-1]["text"] == "one too many"


def _large_server(start_server: Callable[..., Target]) -> Target:
    return start_server("a large-room threshold of 3", large_room=LARGE)


def test_a_large_room_sends_counts_not_presence(
    clients: Clients, start_server: Callable[..., Target]
) -> None:
    target = _large_server(start_server)
    room = unique_room()
    first = clients.login(room, target=target)
    assert first.limits["large_room"] == LARGE
    members = [first]
    for _ in range(LARGE - 1):  # up to the threshold: one member_joined each
        members.append(clients.login(room, target=target))
        for other in members[:-1]:
            assert other.next("member_joined")["nick"] == members[-1].nick
    crossing = clients.login(target=target)
    joined = crossing.join(room)
    assert joined["count"] == LARGE + 1
    assert len(joined["members"]) <= LARGE
    assert joined["members"] == _fold_sorted(joined["members"])
    for other in members:  # the room became large: the count, not the nick
        got = other.barrier()
        assert got == [{"type": "member_count", "room": room, "count": LARGE + 1}], got
    members.append(crossing)
    # One more arrival moves the count by 25%: announced again, still no nick.
    late = clients.login(room, target=target)
    for other in members:
        got = other.barrier()
        assert got == [{"type": "member_count", "room": room, "count": LARGE + 2}], got
    # A departure from a large room: no member_left, the count moves 20%.
    late.request({"type": "part", "room": room}, expect="ok")
    for other in members:
        got = other.barrier()
        assert got == [{"type": "member_count", "room": room, "count": LARGE + 1}], got
    # Small again: the count once more, then presence per member as before.
    crossing.request({"type": "part", "room": room}, expect="ok")
    for other in members[:-1]:
        got = other.barrier()
        assert got == [{"type": "member_count", "room": room, "count": LARGE}], got
    members[-2].request({"type": "part", "room": room}, expect="ok")
    for other in members[:-2]:
        left = other.next("member_left")
        assert left == {
            "type": "member_left",
            "room": room,
            "nick": members[-2].nick,
            "reason": "part",
        }


def test_a_large_room_changes_slowly_between_counts(
    clients: Clients, start_server: Callable[..., Target]
) -> None:
    target = _large_server(start_server)
    room = unique_room()
    watcher = clients.login(room, target=target)
    for _ in range(12):
        clients.login(room, target=target)
    counts = [f["count"] for f in watcher.barrier() if f["type"] == "member_count"]
    assert counts, "the room became large"
    for before, after in itertools.pairwise(counts):
        assert (after - before) * 10 >= before, "announced only after a move of 10%"
    assert counts[-1] * 11 >= 13 * 10, "the last count announced is within 10% of the truth"
    reply = watcher.request({"type": "members", "room": room})
    assert reply["count"] == 13 and len(reply["members"]) == 13


def test_renamed_reaches_only_those_sharing_a_room_that_is_not_large(
    clients: Clients, start_server: Callable[..., Target]
) -> None:
    target = _large_server(start_server)
    big, small = unique_room(), unique_room()
    renamer = clients.login(big, small, target=target)
    friend = clients.login(big, small, target=target)
    strangers = [clients.login(big, target=target) for _ in range(LARGE)]
    for wire in (renamer, friend, *strangers):
        wire.barrier()
    new = unique_nick("renamed")
    reply = renamer.request({"type": "nick", "nick": new})
    assert reply["new"] == new
    assert friend.next("renamed") == {"type": "renamed", "old": reply["old"], "new": new}
    for stranger in strangers:
        assert stranger.barrier() == [], "a large room is not told of renames"
    members = friend.request({"type": "members", "room": big})["members"]
    assert new in members and reply["old"] not in members


def test_an_old_client_in_a_large_room_gets_the_same(
    clients: Clients, start_server: Callable[..., Target]
) -> None:
    target = _large_server(start_server)
    room = unique_room()
    old: list[Wire] = []
    for _ in range(LARGE + 2):
        wire = clients.connect(target)
        wire.hello(unique_nick())  # version 1.0
        old.append(wire)
        joined = wire.join(room)
        assert len(joined["members"]) <= LARGE
    got = old[0].barrier()
    kinds = [f["type"] for f in got]
    assert kinds.count("member_joined") == LARGE - 1
    assert "member_count" in kinds
