"""Section 5: hello and welcome, versions, and errors before the session opens."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.wire import Clients, Frame, unique_nick, unique_room


def test_welcome_answers_hello(clients: Clients) -> None:
    wire = clients.connect()
    nick = unique_nick("Mixed_Case-")
    wire.send({"type": "hello", "id": 1, "nick": nick, "version": "1.0", "client": "conformance"})
    welcome = wire.next("welcome")
    assert welcome["type"] == "welcome"
    assert welcome["ref"] == 1
    assert welcome["nick"] == nick, "a nick's spelling is kept as its owner chose it"
    assert welcome["version"].split(".")[0] == "1"
    assert welcome["session"] and welcome["server"]
    limits = welcome["limits"]
    assert limits["max_frame"] >= 1 and 1 <= limits["max_text"] <= 4000
    assert limits["rate"] > 0 and limits["burst"] >= 1 and limits["history"] >= 0
    assert limits["ping_interval"] > 0 and limits["ping_timeout"] > 0


def test_hello_without_id_is_answered_without_ref(clients: Clients) -> None:
    wire = clients.connect()
    nick = unique_nick()
    wire.send({"type": "hello", "nick": nick})
    welcome = wire.next("welcome")
    assert welcome["type"] == "welcome" and "ref" not in welcome
    assert welcome["nick"] == nick


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.99", None])
def test_every_minor_version_of_1_is_accepted(clients: Clients, version: str | None) -> None:
    wire = clients.connect()
    hello: Frame = {"type": "hello", "id": "h", "nick": unique_nick()}
    if version is not None:
        hello["version"] = version
    welcome = wire.request(hello)
    assert welcome["version"].startswith("1.")


@pytest.mark.parametrize("version", ["2.0", "0.9", "10.1"])
def test_other_major_version_is_fatal(clients: Clients, version: str) -> None:
    wire = clients.connect()
    wire.send({"type": "hello", "id": 1, "nick": unique_nick(), "version": version})
    error = wire.fatal("unsupported_version")
    assert error["ref"] == 1
    assert "1." in error["message"], "the message names the versions the server speaks"


@pytest.mark.parametrize(
    "fields",
    [
        {"nick": "9lives"},
        {"nick": ""},
        {"nick": "n" * 25},
        {},
        {"nick": "ok", "version": "1"},
        {"nick": "ok", "version": 1.0},
        {"nick": "ok", "client": ""},
        {"nick": "ok", "client": "bad\u0007client"},
        {"nick": "ok", "client": "c" * 65},
        {"nick": "ok", "password": "p" * 257},
    ],
    ids=lambda f: ",".join(f"{k}={str(v)[:8]}" for k, v in f.items()) or "no-nick",
)
def test_invalid_hello_is_fatal(clients: Clients, fields: dict[str, Any]) -> None:
    wire = clients.connect()
    wire.send({"type": "hello", "id": "h", **fields})
    error = wire.fatal("invalid_fields")
    assert error["ref"] == "h"


def test_optional_hello_fields_are_accepted(clients: Clients) -> None:
    wire = clients.connect()
    nick = unique_nick()
    welcome = wire.hello(nick, client="c" * 64, password="p" * 256)
    assert welcome["nick"] == nick


def test_nick_in_use_at_hello_is_fatal_and_case_insensitive(clients: Clients) -> None:
    nick = unique_nick("Taken")
    holder = clients.login(nick=nick)
    for other in (nick, nick.lower(), nick.upper()):
        wire = clients.connect()
        wire.send({"type": "hello", "id": 1, "nick": other})
        assert wire.fatal("nick_in_use")["ref"] == 1
    holder.barrier()  # the holder is undisturbed


@pytest.mark.parametrize(
    "first",
    [
        {"type": "join", "id": "j", "room": "lobby"},
        {"type": "ping", "id": 3},
        {"type": "bye", "id": "b"},
        {"type": "pong", "token": "t"},
    ],
    ids=lambda f: f["type"],
)
def test_command_before_hello_is_fatal_out_of_order(clients: Clients, first: Frame) -> None:
    wire = clients.connect()
    wire.send(first, {"type": "hello", "id": "late", "nick": unique_nick()})
    error = wire.fatal("out_of_order")
    if "id" in first:
        assert error["ref"] == first["id"]
    else:
        assert "ref" not in error


@pytest.mark.parametrize(
    ("first", "code"),
    [
        (b"hello\n", "invalid_json"),
        (b'{"type":"hello","nick":"\xff"}\n', "invalid_utf8"),
        (b'["hello"]\n', "not_an_object"),
        (b'{"type":"dance","id":"d"}\n', "unknown_type"),
        (b'{"nick":"x"}\n', "unknown_type"),
    ],
    ids=["not-json", "not-utf8", "array", "unknown-type", "no-type"],
)
def test_every_error_before_welcome_is_fatal(clients: Clients, first: bytes, code: str) -> None:
    wire = clients.connect()
    wire.write(first)
    error = wire.fatal(code)
    if code == "unknown_type" and b'"id"' in first:
        assert error["ref"] == "d"


def test_second_hello_is_refused_without_closing(clients: Clients) -> None:
    wire = clients.connect()
    nick = unique_nick()
    wire.hello(nick)
    error = wire.refused({"type": "hello", "nick": unique_nick()}, "out_of_order")
    assert error["fatal"] is False
    room = unique_room()
    assert wire.join(room)["members"] == [nick], "the first nick stays"


def test_commands_pipelined_behind_hello_are_handled_in_order(clients: Clients) -> None:
    wire = clients.connect()
    nick, room = unique_nick(), unique_room()
    wire.send(
        {"type": "hello", "id": 1, "nick": nick},
        {"type": "join", "id": 2, "room": room},
        {"type": "say", "id": 3, "room": room, "text": "pipelined"},
        {"type": "members", "id": 4, "room": room},
        {"type": "ping", "id": 5},
    )
    frames = [wire.next(f"reply {n} of 5") for n in range(5)]
    refs: list[int] = [f.get("ref", 0) for f in frames]
    assert sorted(refs) == [1, 2, 3, 4, 5], frames
    # Replies come in command order, but the echo of `say` may come later.
    assert [r for r in refs if r != 3] == [1, 2, 4, 5], frames
    assert refs.index(3) > refs.index(2)
    by_ref = {f["ref"]: f for f in frames}
    assert by_ref[2]["type"] == "joined" and by_ref[2]["members"] == [nick]
    assert by_ref[3]["type"] == "message" and by_ref[3]["text"] == "pipelined"
    assert by_ref[4] == {
        "type": "members",
        "ref": 4,
        "room": room,
        "members": [nick],
        "count": 1,
        "more": False,
    }
    assert by_ref[5]["type"] == "pong"


def test_commands_pipelined_behind_a_failed_hello_are_discarded(clients: Clients) -> None:
    holder = clients.login()
    room = unique_room()
    wire = clients.connect()
    wire.send(
        {"type": "hello", "id": 1, "nick": holder.nick.upper()},
        {"type": "join", "id": 2, "room": room},
        {"type": "say", "id": 3, "room": room, "text": "never"},
    )
    assert wire.fatal("nick_in_use")["ref"] == 1
    holder.refused({"type": "members", "room": room}, "no_such_room")
