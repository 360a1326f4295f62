"""Section 6.12 and member_left: how sessions end, and what their rooms are told."""

from __future__ import annotations

from tests.conformance.wire import Clients, unique_nick, unique_room


def test_bye_is_answered_ok_then_closed_and_rooms_told_quit(clients: Clients) -> None:
    room = unique_room()
    watcher = clients.login(room)
    leaver = clients.login(room)
    leaver.send({"type": "bye", "id": "b"})
    assert leaver.until_closed() == [{"type": "ok", "ref": "b"}]
    left = watcher.wait_type("member_left")
    assert left == {"type": "member_left", "room": room, "nick": leaver.nick, "reason": "quit"}


def test_bye_without_id_gets_ok_without_ref(clients: Clients) -> None:
    wire = clients.login()
    wire.send({"type": "bye"})
    assert wire.until_closed() == [{"type": "ok"}]


def test_frames_after_bye_are_ignored(clients: Clients) -> None:
    room = unique_room()
    watcher = clients.login(room)
    leaver = clients.login(room)
    watcher.wait_type("member_joined", nick=leaver.nick)
    leaver.send(
        {"type": "bye", "id": 1},
        {"type": "say", "id": 2, "room": room, "text": "after bye"},
        {"type": "ping", "id": 3},
        b"not even json\n",
    )
    assert leaver.until_closed() == [{"type": "ok", "ref": 1}]
    left = watcher.wait_type("member_left")
    assert left["reason"] == "quit"
    page = watcher.request({"type": "history", "room": room})
    assert page["messages"] == []
    assert watcher.barrier() == [], "the watcher got nothing from the departed client"


def test_bye_pipelined_behind_hello(clients: Clients) -> None:
    wire = clients.connect()
    wire.send({"type": "hello", "id": 1, "nick": unique_nick()}, {"type": "bye", "id": 2})
    frames = wire.until_closed()
    assert [(f["type"], f["ref"]) for f in frames] == [("welcome", 1), ("ok", 2)]


def test_closing_without_bye_tells_rooms_lost_and_frees_the_nick(clients: Clients) -> None:
    room = unique_room()
    watcher = clients.login(room)
    gone = clients.login(room)
    gone.close()
    left = watcher.wait_type("member_left")
    assert left == {"type": "member_left", "room": room, "nick": gone.nick, "reason": "lost"}
    again = clients.login(room, nick=gone.nick)
    assert again.nick == gone.nick
    assert watcher.wait_type("member_joined") == {
        "type": "member_joined",
        "room": room,
        "nick": gone.nick,
    }


def test_closing_in_the_middle_of_a_frame_is_lost(clients: Clients) -> None:
    room = unique_room()
    watcher = clients.login(room)
    gone = clients.login(room)
    gone.write(b'{"type":"say","room":"' + room.encode() + b'","text":"unfinish')
    gone.close()
    left = watcher.wait_type("member_left")
    assert (left["nick"], left["reason"]) == (gone.nick, "lost")
    assert watcher.request({"type": "history", "room": room})["messages"] == []


def test_dm_to_a_departed_client_is_no_such_nick(clients: Clients) -> None:
    room = unique_room()
    watcher = clients.login(room)
    gone = clients.login(room)
    gone.send({"type": "bye"})
    gone.until_closed()
    watcher.wait_type("member_left")
    watcher.refused({"type": "dm", "to": gone.nick, "text": "where are you"}, "no_such_nick")
