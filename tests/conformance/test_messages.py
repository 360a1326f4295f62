"""Sections 6.3 and 6.4: say and dm, and the message and dm events."""

from __future__ import annotations

import time

from tests.conformance.wire import Clients, Frame, unique_nick, unique_room

DAY_MS = 86_400_000


def _event(reply: Frame) -> Frame:
    """A reply as others receive it: the same event without `ref`."""
    return {k: v for k, v in reply.items() if k != "ref"}


def _plausible_ts(ts: int) -> bool:
    return abs(ts - time.time() * 1000) < DAY_MS


def test_say_is_echoed_to_the_sender_and_sent_to_every_member(clients: Clients) -> None:
    room = unique_room()
    sender = clients.login(room)
    members = [clients.login(room) for _ in range(2)]
    echo = sender.request({"type": "say", "id": "s", "room": room, "text": "Hello, everyone!"})
    assert echo["ref"] == "s"
    assert (echo["room"], echo["nick"], echo["text"]) == (room, sender.nick, "Hello, everyone!")
    assert echo["id"] >= 1 and _plausible_ts(echo["ts"])
    for member in members:
        assert member.wait_type("message") == _event(echo)
    # The sender gets its message once: the echo is its copy.
    assert [f for f in sender.barrier() if f["type"] == "message"] == []


def test_sender_id_and_time_are_the_servers(clients: Clients) -> None:
    room = unique_room()
    sender = clients.login(room)
    other = clients.login(room)
    forged = {"nick": unique_nick(), "ts": 1, "from": "mallory", "ref": "x"}
    echo = sender.request({"type": "say", "room": room, "text": "forged?", **forged})
    assert echo["nick"] == sender.nick
    assert echo["ts"] != 1 and _plausible_ts(echo["ts"])
    assert other.wait_type("message")["nick"] == sender.nick


def test_text_round_trips_exactly(clients: Clients) -> None:
    room = unique_room()
    sender = clients.login(room)
    other = clients.login(room)
    texts = [
        "tab\tand\nline feed",
        'quotes " and \\ backslashes \\n',
        "\u00e9\u6f22\u5b57 \U0001f600\U0001f30d \u200b zero width",
        "\u00a0non-breaking, \ufeff bom, \U0010fffd last plane",
        " ",
    ]
    for text in texts:
        echo = sender.say(room, text)
        assert other.wait_type("message", id=echo["id"])["text"] == text


def test_text_may_be_max_text_code_points_long(clients: Clients) -> None:
    room = unique_room()
    sender = clients.login(room)
    other = clients.login(room)
    max_text = sender.limits["max_text"]
    # Four UTF-8 bytes and two UTF-16 units each, but one code point.
    text = "\U0001f600" * max_text
    echo = sender.say(room, text)
    assert other.wait_type("message", id=echo["id"])["text"] == text
    sender.refused({"type": "say", "room": room, "text": text + "x"}, "invalid_fields")


def test_message_ids_are_unique_across_rooms(clients: Clients) -> None:
    rooms = [unique_room(), unique_room()]
    wire = clients.login(*rooms)
    ids = [wire.say(rooms[n % 2], f"m{n}")["id"] for n in range(6)]
    assert len(set(ids)) == len(ids)
    assert ids[0::2] == sorted(ids[0::2]) and ids[1::2] == sorted(ids[1::2])


def test_dm_reaches_the_recipient_and_echoes_to_the_sender(clients: Clients) -> None:
    sender = clients.login()
    recipient = clients.login()
    reply = sender.request({"type": "dm", "id": 5, "to": recipient.nick, "text": "psst"})
    assert reply["ref"] == 5
    assert (reply["nick"], reply["to"], reply["text"]) == (sender.nick, recipient.nick, "psst")
    assert reply["id"] >= 1 and _plausible_ts(reply["ts"])
    assert recipient.next("the dm") == _event(reply)


def test_dm_recipient_is_found_case_insensitively(clients: Clients) -> None:
    sender = clients.login()
    recipient = clients.login(nick=unique_nick("CamelCase"))
    reply = sender.request({"type": "dm", "to": recipient.nick.swapcase(), "text": "hi"})
    assert reply["to"].lower() == recipient.nick.lower()
    event = recipient.next("the dm")
    assert (event["id"], event["nick"], event["text"]) == (reply["id"], sender.nick, "hi")


def test_dm_to_oneself_is_delivered_once(clients: Clients) -> None:
    wire = clients.login()
    reply = wire.request({"type": "dm", "to": wire.nick, "text": "note to self"})
    assert (reply["nick"], reply["to"], reply["text"]) == (wire.nick, wire.nick, "note to self")
    assert wire.barrier() == [], "a dm to oneself comes once, as the reply"


def test_dm_to_nobody_is_no_such_nick(clients: Clients) -> None:
    wire = clients.login()
    error = wire.refused({"type": "dm", "to": unique_nick(), "text": "hello?"}, "no_such_nick")
    assert error["fatal"] is False


def test_dm_ids_are_unique(clients: Clients) -> None:
    a = clients.login()
    b = clients.login()
    ids = [a.request({"type": "dm", "to": b.nick, "text": f"d{n}"})["id"] for n in range(3)]
    ids += [b.request({"type": "dm", "to": a.nick, "text": f"e{n}"})["id"] for n in range(3)]
    assert len(set(ids)) == 6


def test_dms_are_not_stored(clients: Clients) -> None:
    room = unique_room()
    a = clients.login(room)
    b = clients.login(room)
    a.request({"type": "dm", "to": b.nick, "text": "secret"})
    said = a.say(room, "public")
    page = b.request({"type": "history", "room": room})
    assert [m["text"] for m in page["messages"]] == ["public"]
    assert page["messages"][0]["id"] == said["id"]
