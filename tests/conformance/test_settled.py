"""Version 1.3: the points the spec used to leave open (section 15 lists them).

One test per settled point, each against the wire only: null fields, what a
number is, blank lines, the max_frame edge, ref and ids, lengths, versions,
paging from the start, renaming to oneself, the limits in welcome, and what a
session that ends is still owed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.conformance.wire import (
    Clients,
    Frame,
    Target,
    Wire,
    encode_frame,
    unique_nick,
    unique_room,
)

VERSION = re.compile(r"^[0-9]{1,4}\.[0-9]{1,4}$")


def _codes(wire: Wire, frames: list[bytes]) -> list[tuple[str, bool, Any]]:
    wire.send(*frames)
    out = []
    for _ in frames:
        error = wire.next("an error")
        assert error["type"] == "error", error
        out.append((error["code"], error["fatal"], error.get("ref")))
    wire.barrier()
    return out


# -- 1. null is an absent optional field ---------------------------------------


def test_null_means_absent_for_every_optional_field(clients: Clients) -> None:
    wire = clients.connect()
    welcome = wire.hello(
        unique_nick(),
        version=None,
        client=None,
        password=None,
        server_password=None,
        resume=None,
    )
    assert VERSION.match(welcome["version"])
    room = unique_room()
    assert wire.request({"type": "join", "room": room, "x": None})["members"] == [wire.nick]
    echo = wire.request({"type": "say", "room": room, "text": "t", "key": None})
    assert echo["text"] == "t"
    page = wire.request(
        {"type": "history", "room": room, "limit": None, "before": None, "after": None}
    )
    assert [m["text"] for m in page["messages"]] == ["t"]
    rooms = wire.request({"type": "rooms", "after": None, "limit": None})
    assert isinstance(rooms["rooms"], list)
    members = wire.request({"type": "members", "room": room, "after": None, "limit": None})
    assert members["members"] == [wire.nick]
    pong = wire.request({"type": "ping", "token": None})
    assert "token" not in pong


# -- 2. numbers, byte order marks, duplicate keys, surrogates, the case of type --


def test_only_json_integers_are_integers(clients: Clients) -> None:
    wire = clients.login()
    room = unique_room()
    frames = [
        b'{"type":"ping","id":7.0}\n',
        b'{"type":"ping","id":1e2}\n',
        b'{"type":"ping","id":-0.0}\n',
        b'{"type":"history","id":"l1","room":"%s","limit":5.0}\n' % room.encode(),
        b'{"type":"history","id":"l2","room":"%s","limit":1e1}\n' % room.encode(),
        b'{"type":"history","id":"l3","room":"%s","after":9007199254740992}\n' % room.encode(),
        b'{"type":"ping","id":9007199254740992}\n',
    ]
    assert _codes(wire, frames) == [
        ("invalid_fields", False, None),
        ("invalid_fields", False, None),
        ("invalid_fields", False, None),
        ("invalid_fields", False, "l1"),
        ("invalid_fields", False, "l2"),
        ("invalid_fields", False, "l3"),
        ("invalid_fields", False, None),
    ]
    # -0 is a JSON integer: the integer 0.
    wire.send(b'{"type":"ping","id":-0,"token":"zero"}\n')
    pong = wire.next("the pong to id -0")
    assert pong == {"type": "pong", "ref": 0, "token": "zero"}


def test_nan_infinity_and_byte_order_marks_are_not_json(clients: Clients) -> None:
    wire = clients.login()
    frames = [
        b'{"type":"ping","id":"n1","x":NaN}\n',
        b'{"type":"ping","id":"n2","x":[Infinity]}\n',
        b'{"type":"ping","id":"n3","x":{"y":-Infinity}}\n',
        b'{"type":"ping","id":NaN}\n',
        b'\xef\xbb\xbf{"type":"ping","id":"n4"}\n',
    ]
    assert _codes(wire, frames) == [("invalid_json", False, None)] * len(frames)
    # Spelled inside a string, they are text.
    assert wire.request({"type": "ping", "token": "NaN Infinity"})["token"] == "NaN Infinity"


def test_duplicate_keys_the_last_wins(clients: Clients) -> None:
    wire = clients.login()
    wire.send(b'{"type":"ping","id":"d1","token":"first","token":"last"}\n')
    assert wire.reply("d1") == {"type": "pong", "ref": "d1", "token": "last"}
    wire.send(b'{"type":"dance","type":"ping","id":"d2"}\n')
    assert wire.reply("d2")["type"] == "pong"


def _surrogate_frames(room: str) -> list[str]:
    """A lone surrogate escape in every string field of every command, and in a key."""
    s = "\\ud800"
    return [
        f'{{"type":"join","room":"{s}"}}',
        f'{{"type":"part","room":"{s}"}}',
        f'{{"type":"say","room":"{s}","text":"t"}}',
        f'{{"type":"say","room":"{room}","text":"a{s}b"}}',
        f'{{"type":"say","room":"{room}","text":"t","key":"{s}"}}',
        f'{{"type":"dm","to":"{s}","text":"t"}}',
        f'{{"type":"dm","to":"x","text":"{s}"}}',
        f'{{"type":"dm","to":"x","text":"t","key":"{s}"}}',
        f'{{"type":"nick","nick":"{s}"}}',
        f'{{"type":"nick","nick":"x","password":"{s}"}}',
        f'{{"type":"register","password":"{s}password"}}',
        f'{{"type":"rooms","after":"{s}"}}',
        f'{{"type":"members","room":"{s}"}}',
        f'{{"type":"members","room":"{room}","after":"{s}"}}',
        f'{{"type":"topic","room":"{room}","topic":"{s}"}}',
        f'{{"type":"history","room":"{s}"}}',
        f'{{"type":"ping","token":"{s}"}}',
        f'{{"type":"pong","token":"{s}"}}',
        f'{{"type":"ping","id":"{s}"}}',
        '{"type":"ping","x":"\\udc00"}',
        f'{{"type":"ping","{s}":1}}',
        f'{{"type":"{s}"}}',
        f'{{"type":"hello","nick":"x","client":"{s}"}}',
    ]


def test_lone_surrogates_are_invalid_json_in_every_string_field(clients: Clients) -> None:
    room = unique_room()
    frames = [f.encode() + b"\n" for f in _surrogate_frames(room)]
    wire = clients.login(room)
    batch = max(1, wire.limits["burst"] - 4)
    for start in range(0, len(frames), batch):
        if start:
            wire = clients.login(room)
        chunk = frames[start : start + batch]
        assert _codes(wire, chunk) == [("invalid_json", False, None)] * len(chunk), chunk


@pytest.mark.parametrize("field", ["nick", "client", "password", "server_password", "version"])
def test_a_lone_surrogate_in_hello_is_fatal_invalid_json(clients: Clients, field: str) -> None:
    wire = clients.connect()
    fields = {"nick": unique_nick(), field: "PLACEHOLDER"}
    frame = json.dumps({"type": "hello", "id": "h", **fields}).replace("PLACEHOLDER", "\\ud800")
    wire.write(frame.encode() + b"\n")
    assert "ref" not in wire.fatal("invalid_json")


def test_type_is_exact_and_lower_case(clients: Clients) -> None:
    wire = clients.login()
    for kind in ("Ping", "PING", " ping", "ping ", "p\u0131ng"):
        assert wire.refused({"type": kind}, "unknown_type")["code"] == "unknown_type"


# -- 3. blank lines ----------------------------------------------------------------


def test_blank_lines_are_not_frames_and_get_no_answer(clients: Clients) -> None:
    wire = clients.connect()
    # Before hello too: nothing happened, so nothing is fatal.
    wire.write(b"\n\r\n   \n\t \r\n")
    wire.hello(unique_nick())
    wire.write(b"\n  \n\r\n\t\n")
    assert wire.barrier() == []


# -- 4. the max_frame edge ------------------------------------------------------------


def test_a_cr_after_max_frame_bytes_must_be_followed_by_lf(clients: Clients) -> None:
    wire = clients.login()
    body = b'{"type":"ping","id":"edge","p":"' + b"x" * wire.max_frame
    body = body[: wire.max_frame - 2] + b'"}'
    assert len(body) == wire.max_frame
    wire.send(body + b"\r\n")
    assert wire.reply("edge")["type"] == "pong"
    # The CR was content after all: one byte over.
    wire.write(body + b"\rx")
    wire.fatal("frame_too_large")


# -- 5. ref, duplicate_id, 5 and "5" -------------------------------------------------


def test_ref_is_present_iff_the_id_is_valid_and_free(clients: Clients) -> None:
    room = unique_room()
    wire = clients.login(room)
    cases: list[tuple[bytes, Any]] = [
        (b'{"type":"join","id":"v1"}\n', "v1"),  # invalid fields, valid id
        (b'{"type":"dance","id":2}\n', 2),  # unknown type, valid id
        (b'{"type":"join","id":""}\n', None),  # invalid id
        (b'{"type":"join","id":1.5}\n', None),
        (b'{"type":"join","id":true}\n', None),
        (b'["type","ping"]\n', None),  # not an object
        (b'{"type":"ping","id":"v3",}\n', None),  # not JSON
    ]
    refs = []
    wire.send(*(c for c, _ in cases))
    for _ in cases:
        refs.append(wire.next("an error").get("ref"))
    assert refs == [ref for _, ref in cases]
    wire.barrier()


def test_duplicate_id_has_no_ref_and_keeps_the_order(clients: Clients) -> None:
    room = unique_room()
    wire = clients.login(room)
    wire.need(4)
    # Both frames arrive before the first can be answered: "h" is in use.
    wire.send_pair(
        {"type": "history", "id": "h", "room": room},
        {"type": "members", "id": "h", "room": room},
    )
    first, second = wire.next("the first reply"), wire.next("the second reply")
    assert first["type"] == "history" and first["ref"] == "h"
    assert (second["type"], second["code"], second["fatal"]) == ("error", "duplicate_id", False)
    assert "ref" not in second
    # Answered, the id is free again.
    assert wire.request({"type": "ping", "id": "h"})["type"] == "pong"


def test_integer_5_and_string_5_are_different_ids(clients: Clients) -> None:
    wire = clients.login()
    wire.send_pair({"type": "ping", "id": 5, "token": "int"}, {"type": "ping", "id": "5"})
    first, second = wire.next("the first pong"), wire.next("the second pong")
    assert first == {"type": "pong", "ref": 5, "token": "int"}
    assert second == {"type": "pong", "ref": "5"}


# -- 6. lengths are code points ---------------------------------------------------------


def test_lengths_are_counted_in_code_points(clients: Clients) -> None:
    room = unique_room()
    wire = clients.connect()
    four = "\U0001f600"  # four bytes of UTF-8, one code point
    wire.hello(unique_nick(), client=four * 64)
    wire.join(room)
    pong = wire.request({"type": "ping", "id": four * 64, "token": four * 64})
    assert pong["ref"] == four * 64 and pong["token"] == four * 64
    topic = wire.request({"type": "topic", "room": room, "topic": four * 300})
    assert topic["topic"] == four * 300
    text = four * wire.limits["max_text"]
    assert wire.say(room, text)["text"] == text
    assert wire.refused({"type": "topic", "room": room, "topic": four * 301}, "invalid_fields")
    assert wire.refused(
        {"type": "say", "room": room, "text": "t", "key": "k" * 65}, "invalid_fields"
    )


# -- 7. versions, passwords at hello ------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "1.2.3", "v1.2", "1.", ".1", "12345.1", "1.-1", " 1.2"])
def test_a_version_outside_the_grammar_is_fatal_invalid_fields(
    clients: Clients, version: str
) -> None:
    wire = clients.connect()
    wire.send({"type": "hello", "id": "v", "nick": unique_nick(), "version": version})
    assert wire.fatal("invalid_fields")["ref"] == "v"


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2", "01.2", "1.0003", "1.9999"])
def test_welcome_says_the_servers_own_version(clients: Clients, version: str) -> None:
    wire = clients.connect()
    welcome = wire.request({"type": "hello", "nick": unique_nick(), "version": version})
    assert VERSION.match(welcome["version"]) and welcome["version"].split(".")[0] == "1"
    other = clients.connect()
    assert other.request({"type": "hello", "nick": unique_nick()})["version"] == welcome["version"]


def test_an_empty_password_is_invalid_even_for_an_unregistered_nick(clients: Clients) -> None:
    wire = clients.connect()
    wire.send({"type": "hello", "id": "p", "nick": unique_nick(), "password": ""})
    assert wire.fatal("invalid_fields")["ref"] == "p"


def test_a_server_password_to_a_server_without_one_is_ignored(
    clients: Clients, start_server: Callable[..., Target]
) -> None:
    plain = start_server("no server password")
    wire = clients.connect(plain)
    assert wire.hello(unique_nick(), server_password="anything")["type"] == "welcome"


# -- 8. fields a say cannot set ------------------------------------------------------------


def test_say_cannot_set_nick_id_of_the_message_or_ts(clients: Clients) -> None:
    room = unique_room()
    wire = clients.login(room)
    echo = wire.request(
        {"type": "say", "id": "s", "room": room, "text": "t", "nick": "mallory", "ts": 1}
    )
    assert echo["ref"] == "s" and echo["nick"] == wire.nick and echo["ts"] != 1
    assert isinstance(echo["id"], int) and echo["id"] >= 1


# -- 9. direct message ids ------------------------------------------------------------------


def test_direct_message_ids_increase_in_their_own_space(clients: Clients) -> None:
    room = unique_room()
    alice, bob = clients.login(room), clients.login(room)
    ids = []
    for n in range(3):
        ids.append(alice.request({"type": "dm", "to": bob.nick, "text": f"d{n}"})["id"])
        alice.say(room, f"r{n}")
    assert ids == sorted(ids) and len(set(ids)) == 3
    got = [bob.wait_type("dm", text=f"d{n}")["id"] for n in range(3)]
    assert got == ids


# -- 10. history from the very beginning ---------------------------------------------------


def test_history_after_0_pages_from_the_first_message(clients: Clients) -> None:
    room = unique_room()
    wire = clients.login(room)
    for n in range(3):
        wire.say(room, f"m{n}")
    page = wire.request({"type": "history", "room": room, "after": 0, "limit": 2})
    assert [m["text"] for m in page["messages"]] == ["m0", "m1"] and page["more"] is True
    last = page["messages"][-1]["id"]
    page = wire.request({"type": "history", "room": room, "after": last, "limit": 2})
    assert [m["text"] for m in page["messages"]] == ["m2"] and page["more"] is False


# -- 11. renaming to oneself, pong tokens, the bucket ---------------------------------------


def test_renaming_to_ones_own_nick_answers_only_the_renamer(clients: Clients) -> None:
    room = unique_room()
    watcher = clients.login(room)
    wire = clients.login(room)
    watcher.wait_type("member_joined", nick=wire.nick)
    renamed = wire.request({"type": "nick", "nick": wire.nick})
    assert (renamed["old"], renamed["new"]) == (wire.nick, wire.nick)
    assert wire.barrier() == []  # no second copy without ref
    assert watcher.barrier() == []  # nobody else told


def test_the_rate_limit_bucket_starts_full(clients: Clients) -> None:
    wire = clients.connect()
    nick = unique_nick()
    hello: Frame = {"type": "hello", "id": "h", "nick": nick}
    wire.send(hello)
    burst = wire.reply("h")["limits"]["burst"]
    count = min(burst, 200)
    wire.send_whole(*({"type": "ping", "id": f"b{n}"} for n in range(count)))
    for n in range(count):
        assert wire.reply(f"b{n}")["type"] == "pong"


# -- 12. every limit in welcome ---------------------------------------------------------------

LIMITS_1_3 = {
    "max_frame",
    "max_text",
    "rate",
    "burst",
    "history",
    "ping_interval",
    "ping_timeout",
    "handshake_timeout",
    "soft_limit",
    "soft_seconds",
    "hard_limit",
    "max_rooms",
    "max_members",
}


def test_welcome_announces_every_limit(clients: Clients) -> None:
    limits = clients.login().limits
    assert set(limits) >= LIMITS_1_3, LIMITS_1_3 - set(limits)
    assert limits["soft_limit"] <= limits["hard_limit"]
    for name in LIMITS_1_3:
        assert limits[name] > 0, name


# -- 13. what a session that ends is still owed -----------------------------------------------


@pytest.mark.xfail(strict=True, reason="server: replies owed before bye land separately")
def test_the_echo_of_a_say_just_before_bye_comes_before_ok(clients: Clients) -> None:
    room = unique_room()
    wire = clients.login(room)
    wire.send_whole(
        b'{"type":"say","id":"s","room":"%s","text":"last words"}\n{"type":"bye","id":"b"}\n'
        % room.encode()
    )
    frames = wire.until_closed()
    refs = [f.get("ref") for f in frames]
    assert refs == ["s", "b"], frames


# -- 1.0, 1.1 and 1.2 clients keep working ------------------------------------------------------


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_older_clients_use_the_basic_commands(clients: Clients, version: str) -> None:
    room = unique_room()
    alice, bob = clients.connect(), clients.connect()
    alice.hello(unique_nick("a"), version=version)
    bob.hello(unique_nick("b"), version=version)
    joined = alice.request({"type": "join", "room": room})
    assert joined["members"] == [alice.nick]
    bob.request({"type": "join", "room": room})
    alice.wait_type("member_joined", room=room)
    echo = alice.request({"type": "say", "room": room, "text": "hi"})
    assert bob.wait_type("message", id=echo["id"])["text"] == "hi"
    assert alice.request({"type": "members", "room": room})["members"]
    assert alice.request({"type": "rooms"})["rooms"]
    assert alice.request({"type": "history", "room": room})["messages"][-1]["id"] == echo["id"]
    assert alice.request({"type": "topic", "room": room, "topic": "t"})["topic"] == "t"
    assert alice.request({"type": "part", "room": room})["type"] == "ok"
    assert alice.request({"type": "bye"})["type"] == "ok"


def test_a_wrong_password_at_nick_counts_as_a_failed_login(
    clients: Clients, start_server: Callable[..., Target]
) -> None:
    server = start_server("a login throttle of two failures", auth_failures=2, auth_window=60.0)
    owner = clients.login(target=server)
    nick = owner.nick
    owner.request({"type": "register", "password": "correct horse"}, expect="ok")
    owner.request({"type": "bye"})
    mallory = clients.login(target=server)
    for guess in ("wrong one", "wrong two"):
        mallory.refused({"type": "nick", "nick": nick, "password": guess}, "auth_failed")
    # Two failures at `nick`: the address is throttled, even for the right password.
    wire = clients.connect(server)
    wire.send({"type": "hello", "id": "h", "nick": nick, "password": "correct horse"})
    assert wire.fatal("auth_failed")["ref"] == "h"


# -- error texts: fixed, short, never the client's bytes ------------------------------------------


def test_an_invalid_frame_of_64_kib_gets_a_short_error_without_its_bytes(clients: Clients) -> None:
    wire = clients.login()
    room = unique_room()
    fill = wire.max_frame - 100
    frames = [
        b'{"type":"Q' + b"Z" * fill + b'","id":"u"}\n',
        b'{"type":"join","room":"Q' + b"Z" * fill + b'","id":"f"}\n',
        b'{"type":"say","room":"%s","text":"' % room.encode() + b"\\u0007Z" * (fill // 7) + b'"}\n',
        b"QZ" + b"Z" * fill + b"\n",
    ]
    wire.send(*frames)
    for frame in frames:
        error = wire.next(f"the error for a frame of {len(frame)} bytes")
        assert error["type"] == "error" and error["fatal"] is False
        assert len(encode_frame(error)) < 300, error
        assert "ZZZ" not in error["message"] and "Q" not in error["message"], error
    wire.barrier()
