"""Section 4: request ids, ref, duplicate ids, and the order of replies."""

from __future__ import annotations

from tests.conformance.wire import Clients, Frame, unique_nick, unique_room


def test_integer_and_string_ids_are_distinct_and_kept(clients: Clients) -> None:
    wire = clients.login()
    wire.send(
        {"type": "ping", "id": 1, "token": "int"}, {"type": "ping", "id": "1", "token": "str"}
    )
    first, second = wire.next("the pong to id 1"), wire.next('the pong to id "1"')
    assert first == {"type": "pong", "ref": 1, "token": "int"}
    assert second == {"type": "pong", "ref": "1", "token": "str"}
    assert isinstance(first["ref"], int) and isinstance(second["ref"], str)


def test_commands_without_id_get_replies_without_ref(clients: Clients) -> None:
    room = unique_room()
    wire = clients.login()
    other = clients.login()
    commands: list[tuple[Frame, str]] = [
        ({"type": "join", "room": room}, "joined"),
        ({"type": "members", "room": room}, "members"),
        ({"type": "rooms"}, "rooms"),
        ({"type": "topic", "room": room, "topic": "no ref"}, "topic"),
        ({"type": "say", "room": room, "text": "no ref"}, "message"),
        ({"type": "history", "room": room}, "history"),
        ({"type": "dm", "to": other.nick, "text": "no ref"}, "dm"),
        ({"type": "nick", "nick": unique_nick()}, "renamed"),
        ({"type": "ping"}, "pong"),
        ({"type": "part", "room": room}, "ok"),
        ({"type": "part", "room": room}, "error"),
    ]
    wire.need(len(commands))
    for command, reply_type in commands:
        wire.send(command)
        reply = wire.next(f"the reply to {command['type']}")
        assert reply["type"] == reply_type, reply
        assert "ref" not in reply, reply


def test_errors_carry_the_ref_of_the_failed_command(clients: Clients) -> None:
    wire = clients.login()
    for rid in (0, "zero", 2**53 - 1):
        error = wire.refused({"type": "part", "id": rid, "room": unique_room()}, "not_in_room")
        assert error["ref"] == rid and type(error["ref"]) is type(rid)


def test_reusing_an_unanswered_id_is_duplicate_id(clients: Clients) -> None:
    room = unique_room()
    wire = clients.login(room)
    # The server has the second frame before it can have answered the first.
    wire.send_pair(
        {"type": "say", "id": "dup", "room": room, "text": "first"},
        {"type": "ping", "id": "dup", "token": "second"},
    )
    frames = [wire.next("the echo"), wire.next("the duplicate_id error")]
    errors = [f for f in frames if f["type"] == "error"]
    assert len(errors) == 1, frames
    assert (errors[0]["code"], errors[0]["fatal"]) == ("duplicate_id", False)
    assert "ref" not in errors[0], "duplicate_id has no ref: it would be ambiguous"
    echoes = [f for f in frames if f["type"] == "message"]
    assert len(echoes) == 1 and echoes[0]["ref"] == "dup" and echoes[0]["text"] == "first"
    # Once answered, the id may be used again.
    assert wire.request({"type": "ping", "id": "dup"})["ref"] == "dup"


def test_pong_gets_no_reply_and_its_id_is_ignored(clients: Clients) -> None:
    room = unique_room()
    wire = clients.login(room)
    wire.send_pair(
        {"type": "say", "id": "busy", "room": room, "text": "outstanding"},
        {"type": "pong", "id": "busy", "token": "unasked"},
    )
    echo = wire.next("the echo")
    assert (echo["type"], echo["ref"]) == ("message", "busy")
    wire.send({"type": "pong", "id": 77}, {"type": "pong"}, {"type": "ping", "id": 77})
    assert wire.next("the pong to the ping") == {"type": "pong", "ref": 77}


def test_replies_come_in_command_order(clients: Clients) -> None:
    room = unique_room()
    wire = clients.login()
    other = clients.login()
    commands: list[Frame] = [
        {"type": "join", "id": 1, "room": room},
        {"type": "topic", "id": 2, "room": room, "topic": "ordered"},
        {"type": "members", "id": 3, "room": room},
        {"type": "say", "id": 4, "room": room, "text": "may come late"},
        {"type": "rooms", "id": 5},
        {"type": "history", "id": 6, "room": room},
        {"type": "dm", "id": 7, "to": other.nick, "text": "may come late"},
        {"type": "nick", "id": 8, "nick": unique_nick()},
        {"type": "topic", "id": 9, "room": room, "topic": "again"},
        {"type": "ping", "id": 10},
        {"type": "part", "id": 11, "room": room},
        {"type": "part", "id": 12, "room": room},
    ]
    wire.need(len(commands))
    wire.send(*commands)
    refs = [wire.next(f"reply {n + 1} of {len(commands)}")["ref"] for n in range(len(commands))]
    assert sorted(refs) == list(range(1, 13))
    # The echoes of say (4) and dm (7) may come after later replies; nothing else may.
    assert [r for r in refs if r not in (4, 7)] == [1, 2, 3, 5, 6, 8, 9, 10, 11, 12], refs
