"""Section 2: framing, and the error codes of frames the server cannot accept."""

from __future__ import annotations

import json
from typing import Any

from tests.conformance.wire import Clients, Frame, encode_frame, unique_nick, unique_room


def test_crlf_line_ends_are_tolerated(clients: Clients) -> None:
    wire = clients.connect()
    room = unique_room()
    nick = unique_nick()
    wire.send(
        b'{"type":"hello","id":1,"nick":"%s"}\r\n' % nick.encode(),
        b'{"type":"join","id":2,"room":"%s"}\r\n' % room.encode(),
        b'{"type":"ping","id":3,"token":"crlf"}\r\n',
    )
    assert wire.reply(1)["type"] == "welcome"
    joined = wire.reply(2)
    assert (joined["type"], joined["room"], joined["members"]) == ("joined", room, [nick])
    assert wire.reply(3) == {"type": "pong", "ref": 3, "token": "crlf"}


def test_unknown_fields_are_ignored(clients: Clients) -> None:
    wire = clients.connect()
    extra: dict[str, Any] = {"x-future": {"nested": [1, 2.5, None, True]}, "colour": "blue"}
    nick = unique_nick()
    welcome = wire.hello(nick, **extra)
    assert welcome["nick"] == nick
    room = unique_room()
    joined = wire.request({"type": "join", "room": room, **extra})
    assert joined["members"] == [nick]
    echo = wire.request({"type": "say", "room": room, "text": "hi", **extra})
    assert (echo["room"], echo["text"]) == (room, "hi")
    assert wire.request({"type": "ping", "token": "t", **extra})["token"] == "t"


def test_empty_lines_are_not_frames(clients: Clients) -> None:
    wire = clients.login()
    wire.send(b"\n", b"\r\n", b" \t \r\n")
    assert wire.barrier() == [], "blank lines are never answered"


def test_invalid_utf8_is_refused_without_closing(clients: Clients) -> None:
    wire = clients.login()
    bad = [
        b'{"type":"ping","token":"\xff"}\n',  # a byte that is never UTF-8
        b'{"type":"ping","token":"\xc0\xaf"}\n',  # an overlong encoding of "/"
        b'{"type":"ping","token":"\xed\xa0\x80"}\n',  # an encoded surrogate
        b'{"type":"ping","token":"\xe2\x82"}\n',  # a truncated sequence
    ]
    wire.send(*bad)
    for frame in bad:
        error = wire.next(f"the error for {frame!r}")
        assert (error["type"], error["code"], error["fatal"]) == ("error", "invalid_utf8", False)
    wire.barrier()


def test_invalid_json_is_refused_without_closing(clients: Clients) -> None:
    wire = clients.login()
    bad = [
        b'{"type":"ping",\n',
        b"{'type':'ping'}\n",
        b'{"type":"ping"} trailing\n',
        b'{"type":"ping"}{"type":"ping"}\n',
        b"{type:ping}\n",
        b"   x\n",
    ]
    wire.send(*bad)
    for frame in bad:
        error = wire.next(f"the error for {frame!r}")
        assert (error["type"], error["code"], error["fatal"]) == ("error", "invalid_json", False)
        assert "ref" not in error
    wire.barrier()


def test_json_that_is_not_an_object_is_refused(clients: Clients) -> None:
    wire = clients.login()
    values = ['[{"type":"ping","id":1}]', "[]", '"ping"', "42", "null", "true"]
    wire.send(*(v.encode() + b"\n" for v in values))
    for value in values:
        error = wire.next(f"the error for {value}")
        assert (error["type"], error["code"], error["fatal"]) == ("error", "not_an_object", False)
        assert "ref" not in error
    wire.barrier()


def test_unknown_or_missing_type_is_refused_with_ref(clients: Clients) -> None:
    wire = clients.login()
    cases: list[Frame] = [
        {"type": "dance", "id": "d1"},
        {"id": 7},
        {"type": 5, "id": "d2"},
        {"type": None, "id": 8},
        {"type": "PING", "id": "d3"},  # type names are case-sensitive
        {"type": "welcome", "id": 9},  # an event's name, not a command
        {"type": "member_joined", "id": "d4", "room": "x", "nick": "x"},
    ]
    for frame in cases:
        wire.refused(frame, "unknown_type")
    wire.send({"type": "dance"})
    error = wire.next("the error for a type without an id")
    assert (error["code"], error["fatal"]) == ("unknown_type", False)
    assert "ref" not in error


def _fields_cases(room: str, max_text: int) -> list[Frame]:
    big = 2**53
    return [
        {"type": "join"},
        {"type": "join", "room": "Lobby"},
        {"type": "join", "room": ""},
        {"type": "join", "room": "-dash-first"},
        {"type": "join", "room": "a" * 33},
        {"type": "join", "room": 5},
        {"type": "join", "room": ["lobby"]},
        {"type": "say", "room": room},
        {"type": "say", "room": room, "text": ""},
        {"type": "say", "room": room, "text": 5},
        {"type": "say", "room": room, "text": "bell \u0007"},
        {"type": "say", "room": room, "text": "cr \r"},
        {"type": "say", "room": room, "text": "del \u007f"},
        {"type": "say", "room": room, "text": "c1 \u0085"},
        {"type": "say", "room": room, "text": "x" * (max_text + 1)},
        {"type": "dm", "to": "1abc", "text": "hi"},
        {"type": "dm", "to": "bob"},
        {"type": "nick", "nick": "two words"},
        {"type": "nick", "nick": "n" * 25},
        {"type": "nick", "nick": "caf\u00e9"},
        {"type": "topic", "room": room, "topic": "line\nbreak"},
        {"type": "topic", "room": room, "topic": "t" * 301},
        {"type": "topic", "room": room},
        {"type": "members"},
        {"type": "history", "room": room, "limit": "5"},
        {"type": "history", "room": room, "limit": 0},
        {"type": "history", "room": room, "limit": 101},
        {"type": "history", "room": room, "limit": 1.5},
        {"type": "history", "room": room, "limit": True},
        {"type": "history", "room": room, "before": 0},
        {"type": "history", "room": room, "after": -1},
        {"type": "history", "room": room, "after": big},
        {"type": "history", "room": room, "before": 5, "after": 1},
        {"type": "ping", "token": "t" * 65},
        {"type": "ping", "token": 5},
    ]


def test_invalid_fields_are_refused_with_ref(clients: Clients) -> None:
    room = unique_room()
    wire = clients.login(room)
    cases = _fields_cases(room, wire.limits["max_text"])
    # Stay within the rate limit: one connection per batch of cases.
    batch = max(1, wire.limits["burst"] - 4)
    for start in range(0, len(cases), batch):
        if start:
            wire = clients.login(room)
        for frame in cases[start : start + batch]:
            wire.refused(frame, "invalid_fields")
        wire.barrier()


def test_invalid_request_ids_are_refused_without_ref(clients: Clients) -> None:
    wire = clients.login()
    bad_ids: list[Any] = [-1, 2**53, 1.5, "", "i" * 65, True, [1], {"n": 1}]
    wire.need(len(bad_ids) + 1)
    for rid in bad_ids:
        wire.send({"type": "ping", "id": rid})
        error = wire.next(f"the error for id {rid!r}")
        assert (error["type"], error["code"], error["fatal"]) == ("error", "invalid_fields", False)
        assert "ref" not in error, f"id {rid!r} cannot be read, yet the error has ref"
    wire.barrier()


def test_extreme_valid_request_ids_are_echoed(clients: Clients) -> None:
    wire = clients.login()
    for rid in [0, 2**53 - 1, "i" * 64, "\u00e9\u6f22\U0001f600", " "]:
        pong = wire.request({"type": "ping", "id": rid})
        assert pong["ref"] == rid and type(pong["ref"]) is type(rid)
    # A null id is an omitted id: the reply has no ref.
    wire.send({"type": "ping", "id": None, "token": "null-id"})
    pong = wire.next("the pong for a null id")
    assert pong == {"type": "pong", "token": "null-id"}


def _padded_ping(size: int, rid: str) -> bytes:
    """A valid ping frame of exactly `size` bytes, line end excluded."""
    head = json.dumps({"type": "ping", "id": rid, "pad": ""}, separators=(",", ":"))
    frame = head[:-2] + "x" * (size - len(head)) + '"}'
    assert len(frame) == size
    return frame.encode()


def test_frame_of_exactly_max_frame_bytes_is_accepted(clients: Clients) -> None:
    wire = clients.login()
    size = wire.max_frame
    wire.send(_padded_ping(size, "lf") + b"\n", _padded_ping(size, "crlf") + b"\r\n")
    assert wire.reply("lf")["type"] == "pong"
    assert wire.reply("crlf")["type"] == "pong"


def test_frame_over_max_frame_is_fatal_at_once(clients: Clients) -> None:
    room = unique_room()
    watcher = clients.login(room)
    wire = clients.login(room)
    # One byte too many and no line end: the server must not wait for the rest.
    frame = encode_frame({"type": "say", "room": room, "text": "x" * wire.max_frame})
    wire.write(frame[: wire.max_frame + 1])
    wire.fatal("frame_too_large")
    left = watcher.wait_type("member_left", nick=wire.nick)
    assert left == {"type": "member_left", "room": room, "nick": wire.nick, "reason": "kicked"}
    watcher.barrier()


def test_deeply_nested_json_is_survived(clients: Clients) -> None:
    wire = clients.login()
    depth = min(5_000, wire.max_frame // 2 - 100)
    nested = b"[" * depth + b"]" * depth
    wire.send(nested + b"\n", b'{"type":"ping","id":"deep","x":' + nested + b"}\n")
    first = wire.next("the answer to a deeply nested array")
    # It is JSON, but a server may refuse to parse it that deep; either way it
    # is no object and no reason to close the connection.
    assert first["type"] == "error" and first["code"] in ("not_an_object", "invalid_json")
    assert first["fatal"] is False
    second = wire.next("the answer to a ping with a deeply nested unknown field")
    assert second["type"] == "pong" or (second["code"], second["fatal"]) == ("invalid_json", False)
    wire.barrier()


def test_non_fatal_errors_leave_the_session_usable(clients: Clients) -> None:
    room = unique_room()
    wire = clients.login(room)
    wire.send(b"nonsense\n", b"[]\n", b'{"type":"dance"}\n', b'{"type":"join"}\n')
    codes = [wire.next("an error")["code"] for _ in range(4)]
    assert codes == ["invalid_json", "not_an_object", "unknown_type", "invalid_fields"]
    echo = wire.say(room, "still here")
    assert echo["text"] == "still here"
