"""Section 6.5: nick changes, and the renamed event."""

from __future__ import annotations

from tests.conformance.wire import Clients, Frame, Wire, unique_nick, unique_room


def test_rename_is_told_once_to_everyone_sharing_a_room(clients: Clients) -> None:
    room1, room2 = unique_room(), unique_room()
    renamer = clients.login(room1, room2)
    both = clients.login(room1, room2)  # shares two rooms: told once
    one = clients.login(room2)
    stranger = clients.login()  # shares no room: not told
    old, new = renamer.nick, unique_nick()
    reply = renamer.request({"type": "nick", "id": 6, "nick": new})
    assert reply == {"type": "renamed", "ref": 6, "old": old, "new": new}
    event = {"type": "renamed", "old": old, "new": new}
    # A dm sent after the rename arrives after anything the rename caused.
    for wire in (both, one, stranger):
        dm = renamer.request({"type": "dm", "to": wire.nick, "text": "after"})
        assert dm["nick"] == new
        frames = [f for f in [*wire.pending(), *_until_dm(wire)] if f["type"] != "member_joined"]
        expected = [] if wire is stranger else [event]
        assert frames == expected, f"{wire.nick} got {frames}"


def _until_dm(wire: Wire) -> list[Frame]:
    frames = []
    while (frame := wire.next("the dm sent after the rename"))["type"] != "dm":
        frames.append(frame)
    return frames


def test_renamed_client_is_known_by_its_new_nick(clients: Clients) -> None:
    room = unique_room()
    renamer = clients.login(room)
    other = clients.login(room)
    old, new = renamer.nick, unique_nick()
    renamer.request({"type": "nick", "nick": new})
    assert other.wait_type("renamed") == {"type": "renamed", "old": old, "new": new}
    assert sorted(other.request({"type": "members", "room": room})["members"]) == sorted(
        [new, other.nick]
    )
    assert renamer.say(room, "who am I")["nick"] == new
    assert other.wait_type("message")["nick"] == new
    other.refused({"type": "dm", "to": old, "text": "old"}, "no_such_nick")
    assert other.request({"type": "dm", "to": new, "text": "new"})["to"] == new
    # The old nick is free again.
    newcomer = clients.connect()
    assert newcomer.hello(old)["nick"] == old


def test_nick_in_use_is_refused_case_insensitively(clients: Clients) -> None:
    holder = clients.login(nick=unique_nick("Holder"))
    wire = clients.login()
    for taken in (holder.nick, holder.nick.lower(), holder.nick.upper()):
        error = wire.refused({"type": "nick", "nick": taken}, "nick_in_use")
        assert error["fatal"] is False
    room = unique_room()
    assert wire.join(room)["members"] == [wire.nick], "the nick is unchanged"


def test_changing_only_the_case_is_allowed(clients: Clients) -> None:
    room = unique_room()
    wire = clients.login(room, nick=unique_nick("case"))
    other = clients.login(room)
    old, new = wire.nick, wire.nick.upper()
    reply = wire.request({"type": "nick", "id": "c", "nick": new})
    assert reply == {"type": "renamed", "ref": "c", "old": old, "new": new}
    assert other.wait_type("renamed") == {"type": "renamed", "old": old, "new": new}
    assert wire.say(room, "shouting")["nick"] == new
