"""Sections 6.1, 6.2, 6.6, 6.7 and 6.8: join, part, rooms, members and topic."""

from __future__ import annotations

from tests.conformance.wire import Clients, unique_room


def test_join_creates_the_room(clients: Clients) -> None:
    wire = clients.login()
    room = unique_room()
    joined = wire.request({"type": "join", "id": "j", "room": room})
    assert joined == {
        "type": "joined",
        "ref": "j",
        "room": room,
        "topic": "",
        "members": [wire.nick],
        "history": [],
        "count": 1,
        "more": False,
    }
    assert wire.request({"type": "members", "room": room})["members"] == [wire.nick]


def test_join_tells_the_other_members(clients: Clients) -> None:
    room = unique_room()
    first = clients.login(room)
    second = clients.login()
    joined = second.join(room)
    assert sorted(joined["members"]) == sorted([first.nick, second.nick])
    event = first.next("member_joined")
    assert event == {"type": "member_joined", "room": room, "nick": second.nick}
    # The joiner is not told about itself.
    assert second.barrier() == []


def test_joining_again_is_a_fresh_joined_and_tells_nobody(clients: Clients) -> None:
    room = unique_room()
    first = clients.login(room)
    second = clients.login(room)
    assert first.next("member_joined")["nick"] == second.nick
    echo = first.say(room, "before the second join")
    again = second.join(room)
    assert again["room"] == room
    assert sorted(again["members"]) == sorted([first.nick, second.nick])
    assert again["history"][-1] == {k: v for k, v in echo.items() if k != "ref"}
    # A message sent after the second join reaches `first` with nothing before it.
    echo = second.say(room, "after the second join")
    frame = first.next("the message after the second join")
    assert frame == {k: v for k, v in echo.items() if k != "ref"}, "nobody is told of a re-join"


def test_part_replies_ok_and_tells_the_others(clients: Clients) -> None:
    room = unique_room()
    stayer = clients.login(room)
    leaver = clients.login(room)
    assert stayer.next("member_joined")["nick"] == leaver.nick
    assert leaver.request({"type": "part", "id": 4, "room": room}) == {"type": "ok", "ref": 4}
    left = stayer.next("member_left")
    assert left == {"type": "member_left", "room": room, "nick": leaver.nick, "reason": "part"}
    assert leaver.barrier() == [], "the leaver is not told about itself"
    assert stayer.request({"type": "members", "room": room})["members"] == [stayer.nick]
    # The leaver gets no more of the room's messages.
    stayer.say(room, "after the part")
    dm = stayer.request({"type": "dm", "to": leaver.nick, "text": "barrier"})
    assert leaver.next("the dm sent after the room's message") == {
        k: v for k, v in dm.items() if k != "ref"
    }


def test_part_when_not_a_member_is_not_in_room(clients: Clients) -> None:
    room = unique_room()
    member = clients.login(room)
    other = clients.login()
    other.refused({"type": "part", "room": room}, "not_in_room")
    other.refused({"type": "part", "room": unique_room()}, "not_in_room")
    member.request({"type": "part", "room": room})
    member.refused({"type": "part", "room": room}, "not_in_room")


def test_members_may_be_asked_by_anyone(clients: Clients) -> None:
    room = unique_room()
    a = clients.login(room)
    b = clients.login(room)
    outsider = clients.login()
    reply = outsider.request({"type": "members", "id": "m", "room": room})
    assert reply["ref"] == "m" and reply["room"] == room
    assert sorted(reply["members"]) == sorted([a.nick, b.nick])
    outsider.refused({"type": "members", "room": unique_room()}, "no_such_room")


def test_a_room_that_emptied_still_exists(clients: Clients) -> None:
    room = unique_room()
    wire = clients.login(room)
    wire.request({"type": "part", "room": room})
    reply = wire.request({"type": "members", "room": room})
    assert reply["members"] == [], "an empty room has existed: no no_such_room"
    listed = wire.request({"type": "rooms"})["rooms"]
    assert room not in [r["room"] for r in listed], "only rooms with members are listed"


def test_rooms_lists_populated_rooms_in_name_order(clients: Clients) -> None:
    busy, quiet = unique_room(), unique_room()
    a = clients.login(busy, quiet)
    clients.login(busy)
    a.request({"type": "topic", "room": quiet, "topic": "shh"})
    reply = a.request({"type": "rooms", "id": 7})
    assert reply["ref"] == 7
    rows = reply["rooms"]
    names = [r["room"] for r in rows]
    assert names == sorted(names), "in name order (since 1.3)"
    assert all(r["members"] >= 1 for r in rows)
    by_name = {r["room"]: r for r in rows}
    assert by_name[busy] == {"room": busy, "members": 2, "topic": ""}
    assert by_name[quiet] == {"room": quiet, "members": 1, "topic": "shh"}


def test_topic_is_sent_to_every_member_and_kept(clients: Clients) -> None:
    room = unique_room()
    setter = clients.login(room)
    member = clients.login(room)
    setter.next("member_joined")
    topic = "Release day \u2014 \U0001f680 " + "t" * 280
    reply = setter.request({"type": "topic", "id": "t", "room": room, "topic": topic})
    expected = {"type": "topic", "room": room, "topic": topic, "nick": setter.nick}
    assert reply == {**expected, "ref": "t"}
    assert member.next("the topic event") == expected
    newcomer = clients.login()
    assert newcomer.join(room)["topic"] == topic
    rows = {r["room"]: r for r in newcomer.request({"type": "rooms"})["rooms"]}
    assert rows[room]["topic"] == topic
    cleared = setter.request({"type": "topic", "room": room, "topic": ""})
    assert cleared["topic"] == ""
    assert member.wait_type("topic")["topic"] == ""
    assert newcomer.wait_type("topic")["topic"] == ""


def test_topic_needs_membership(clients: Clients) -> None:
    room = unique_room()
    clients.login(room)
    outsider = clients.login()
    outsider.refused({"type": "topic", "room": room, "topic": "mine"}, "not_in_room")
    outsider.refused({"type": "topic", "room": unique_room(), "topic": "x"}, "not_in_room")


def test_say_needs_membership(clients: Clients) -> None:
    room = unique_room()
    clients.login(room)
    outsider = clients.login()
    outsider.refused({"type": "say", "room": room, "text": "let me in"}, "not_in_room")
    outsider.refused({"type": "say", "room": unique_room(), "text": "anyone?"}, "not_in_room")
