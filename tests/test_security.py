"""The server's security features (PROTOCOL.md 1.1, sections 3, 5, 6.5, 6.13, 8, 10, 14),
each proved on the wire: registered nicks, the server password, the login
throttle, the abuse limits, the field rules, forgery and leaks.

Every test talks to a real server on 127.0.0.1 through raw sockets and
synchronises on replies only.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import chatserver.handler
from chatproto import RoomMessage
from chatserver.accounts import verify_password
from chatserver.server import ChatServer
from chatserver.sqlite_store import SQLiteStore
from chatserver.store import MemoryStore
from tests.support import Wire, login, running

PASSWORD = "correct horse battery"
OTHER = "Tr0ub4dor&3-guess"
# Tests that are not about the login throttle must not run into it.
LENIENT = 1000


# -- helpers -----------------------------------------------------------------


def _fatal(wire: Wire, reply: dict[str, Any], code: str) -> None:
    """`reply` is a fatal `code` error, and it is the last frame of the session."""
    assert reply["type"] == "error", reply
    assert reply["code"] == code, reply
    assert reply["fatal"] is True, reply
    assert wire.closed() == []
    wire.close()


def _error(reply: dict[str, Any], code: str) -> None:
    """`reply` is a non-fatal `code` error."""
    assert reply["type"] == "error", reply
    assert reply["code"] == code, reply
    assert reply["fatal"] is False, reply


def _alive(wire: Wire) -> list[dict[str, Any]]:
    """Round-trip a ping; return every frame that arrived before its pong."""
    frames: list[dict[str, Any]] = []

    def seen(frame: dict[str, Any]) -> bool:
        frames.append(frame)
        return frame.get("type") == "pong" and frame.get("token") == "alive"

    wire.send(type="ping", id="alive-check", token="alive")
    wire.until(seen)
    return frames[:-1]


def _register(server: ChatServer, nick: str, password: str = PASSWORD) -> None:
    """Register `nick` and leave, so that the nick is free again."""
    wire = login(server, nick)
    assert wire.request(type="register", password=password) == {
        "type": "ok",
        "ref": "r2",
    }
    _leave(wire)


def _leave(wire: Wire) -> None:
    # `bye` is answered, then the connection closes once the server has
    # forgotten the session: its nick is free when the stream ends.
    assert wire.request(type="bye")["type"] == "ok"
    assert wire.closed() == []
    wire.close()


def _hello(server: ChatServer, nick: str, **extra: Any) -> tuple[Wire, dict[str, Any]]:
    wire = Wire(server.address)
    return wire, wire.hello(nick, **extra)


def _strings(value: Any) -> list[str]:
    """Every string in a decoded frame, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


# -- registered nicks (6.13, 5, 6.5) ------------------------------------------


def test_registered_nick_needs_its_password_at_hello_in_any_case() -> None:
    with running(auth_failures=LENIENT) as server:
        _register(server, "Alice")

        wire, reply = _hello(server, "alice")
        _fatal(wire, reply, "auth_failed")
        wire, reply = _hello(server, "ALICE", password=OTHER)
        _fatal(wire, reply, "auth_failed")
        wire, reply = _hello(server, "aLiCe", password=PASSWORD.upper())
        _fatal(wire, reply, "auth_failed")

        wire, reply = _hello(server, "alice", password=PASSWORD)
        assert reply["type"] == "welcome", reply
        assert reply["nick"] == "alice"  # spelled as this owner chose
        assert _alive(wire) == []
        wire.close()


def test_registered_nick_needs_its_password_for_nick() -> None:
    with running(auth_failures=LENIENT) as server:
        _register(server, "alice")
        mallory = login(server, "mallory", "lobby")
        bob = login(server, "bob", "lobby")

        _error(mallory.request(type="nick", nick="alice"), "auth_failed")
        _error(mallory.request(type="nick", nick="Alice", password=OTHER), "auth_failed")
        # Not fatal, and the nick did not change.
        assert mallory.request(type="members", room="lobby")["members"] == ["bob", "mallory"]
        assert _alive(bob) == []  # nobody was told of a rename

        reply = mallory.request(type="nick", nick="Alice", password=PASSWORD)
        assert reply == {"type": "renamed", "ref": "r6", "old": "mallory", "new": "Alice"}
        assert bob.until(lambda f: f["type"] == "renamed") == {
            "type": "renamed",
            "old": "mallory",
            "new": "Alice",
        }
        # The owner may change the case alone without a password.
        assert mallory.request(type="nick", nick="ALICE")["type"] == "renamed"
        mallory.close()
        bob.close()


def test_register_twice_is_already_registered_and_keeps_the_first_password() -> None:
    with running(auth_failures=LENIENT) as server:
        alice = login(server, "alice")
        _error(alice.request(type="register", password="1234567"), "invalid_fields")
        # The short password registered nothing: this one is the first.
        assert alice.request(type="register", password="12345678")["type"] == "ok"
        _error(alice.request(type="register", password=PASSWORD), "already_registered")
        _error(alice.request(type="register", password="12345678"), "already_registered")
        _leave(alice)

        wire, reply = _hello(server, "alice", password=PASSWORD)
        _fatal(wire, reply, "auth_failed")
        wire, reply = _hello(server, "alice", password="1234567")
        _fatal(wire, reply, "auth_failed")
        wire, reply = _hello(server, "alice", password="12345678")
        assert reply["type"] == "welcome", reply
        wire.close()


def test_unregistered_nicks_work_without_a_password() -> None:
    with running() as server:
        _register(server, "alice")
        bob = login(server, "bob")
        # A password for an unregistered nick is ignored.
        carol, reply = _hello(server, "carol", password="whatever it is")
        assert reply["type"] == "welcome"
        assert bob.request(type="nick", nick="robert")["type"] == "renamed"
        assert carol.request(type="nick", nick="caroline", password="x")["type"] == "renamed"
        bob.close()
        carol.close()


def test_accounts_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    with running(SQLiteStore(db)) as server:
        _register(server, "Alice")
    with running(SQLiteStore(db), auth_failures=LENIENT) as server:
        wire, reply = _hello(server, "alice")
        _fatal(wire, reply, "auth_failed")
        wire, reply = _hello(server, "alice", password=PASSWORD)
        assert reply["type"] == "welcome", reply
        _error(wire.request(type="register", password=OTHER), "already_registered")
        wire.close()


def test_only_a_salted_scrypt_hash_is_stored(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    with running(SQLiteStore(db)) as server:
        _register(server, "alice")
        _register(server, "bob")  # the same password
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT nick, hash FROM accounts").fetchall())
    conn.close()
    assert set(rows) == {"alice", "bob"}
    assert rows["alice"] != rows["bob"]
    salts = set()
    for stored in rows.values():
        assert stored.startswith("scrypt$")
        assert PASSWORD not in stored
        assert PASSWORD.encode().hex() not in stored
        _scheme, n, _r, _p, salt, digest = stored.split("$")
        assert int(n) >= 2**14  # a slow hash
        assert len(bytes.fromhex(salt)) >= 16
        assert len(bytes.fromhex(digest)) >= 32
        assert verify_password(PASSWORD, stored)
        assert not verify_password(OTHER, stored)
        salts.add(salt)
    assert len(salts) == 2  # a salt per account
    # Nowhere in the database's files, journal included.
    for path in tmp_path.iterdir():
        assert PASSWORD.encode() not in path.read_bytes(), path


def test_passwords_are_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    too_long = "L0ng-" + "x" * 300
    with running(server_password="server-s3cret-pw", auth_failures=LENIENT) as server:
        alice, reply = _hello(server, "alice", server_password="server-s3cret-pw")
        assert reply["type"] == "welcome", reply
        _error(alice.request(type="register", password="short-7"), "invalid_fields")
        assert alice.request(type="register", password=PASSWORD)["type"] == "ok"
        _leave(alice)
        wire, reply = _hello(server, "alice", password=OTHER, server_password="server-s3cret-pw")
        _fatal(wire, reply, "auth_failed")
        wire, reply = _hello(server, "alice", password=too_long, server_password="server-s3cret-pw")
        _fatal(wire, reply, "invalid_fields")
        wire, reply = _hello(server, "bob", server_password="wrong-server-pw")
        _fatal(wire, reply, "auth_failed")
        bob, reply = _hello(server, "bob", server_password="server-s3cret-pw")
        assert reply["type"] == "welcome", reply
        _error(bob.request(type="nick", nick="alice", password=OTHER), "auth_failed")
        assert bob.request(type="nick", nick="alice", password=PASSWORD)["type"] == "renamed"
        bob.close()
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert "failed login as alice" in logged  # the failures were logged...
    for secret in (PASSWORD, OTHER, "short-7", too_long, "server-s3cret-pw", "wrong-server-pw"):
        assert secret not in logged  # ...without the passwords


# -- the server password (5) ---------------------------------------------------


def test_server_password_is_required_in_hello() -> None:
    with running(server_password="s3cret", auth_failures=LENIENT) as server:
        for extra in (
            {},
            {"server_password": "wrong"},
            {"server_password": "S3CRET"},
            {"password": "s3cret"},  # the nick's password is another field
        ):
            wire, reply = _hello(server, "alice", **extra)
            _fatal(wire, reply, "auth_failed")
        alice, reply = _hello(server, "alice", server_password="s3cret")
        assert reply["type"] == "welcome", reply
        assert alice.request(type="register", password=PASSWORD)["type"] == "ok"
        _leave(alice)
        # A registered nick needs both passwords.
        wire, reply = _hello(server, "alice", server_password="s3cret")
        _fatal(wire, reply, "auth_failed")
        wire, reply = _hello(server, "alice", password=PASSWORD)
        _fatal(wire, reply, "auth_failed")
        wire, reply = _hello(server, "alice", password=PASSWORD, server_password="s3cret")
        assert reply["type"] == "welcome", reply
        wire.close()


# -- the login throttle (10) ----------------------------------------------------

FAILURES = 3
WINDOW = 1.5


def _login(server: ChatServer, nick: str, **extra: Any) -> bool:
    """One login attempt on a new connection: True if welcomed, else auth_failed."""
    wire, reply = _hello(server, nick, **extra)
    if reply["type"] == "welcome":
        wire.close()
        return True
    _fatal(wire, reply, "auth_failed")
    return False


def test_login_throttle_refuses_unchecked_until_the_window_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked: list[str] = []

    def counting(password: str, stored: str) -> bool:
        checked.append(password)
        return verify_password(password, stored)

    with running(auth_failures=FAILURES, auth_window=WINDOW) as server:
        _register(server, "alice")
        monkeypatch.setattr(chatserver.handler, "verify_password", counting)

        # A guessing loop from one address: only FAILURES guesses are checked.
        start = time.monotonic()
        guesses = [f"guess-{n:04d}" for n in range(10)]
        for guess in guesses:
            assert not _login(server, "alice", password=guess)
        assert time.monotonic() - start < WINDOW, "the guessing loop outlived the window"
        assert checked == guesses[:FAILURES]

        # Even the right password is refused without a check, at hello...
        assert not _login(server, "alice", password=PASSWORD)
        # ...and at `nick`, where the refusal is not fatal.
        mallory = login(server, "mallory")  # unregistered nicks need no check
        _error(mallory.request(type="nick", nick="alice", password=PASSWORD), "auth_failed")
        assert mallory.request(type="nick", nick="mallory2")["old"] == "mallory"
        mallory.close()
        assert checked == guesses[:FAILURES]

        # The owner gets in once the oldest failure is WINDOW old, not before.
        attempts = 0
        while not _login(server, "alice", password=PASSWORD):
            attempts += 1
            assert time.monotonic() - start < WINDOW + 3.0, "still refused after the window"
        elapsed = time.monotonic() - start
        assert elapsed >= WINDOW
        assert attempts >= 1
        # Over the whole run, of 13 + `attempts` logins only FAILURES guesses and
        # the one that succeeded were checked: guessing goes at FAILURES per WINDOW.
        assert checked == [*guesses[:FAILURES], PASSWORD]


def test_login_throttle_covers_the_server_password() -> None:
    with running(server_password="s3cret", auth_failures=FAILURES, auth_window=1.0) as server:
        start = time.monotonic()
        for _ in range(FAILURES):
            assert not _login(server, "alice", server_password="wrong")
        assert not _login(server, "alice", server_password="s3cret")
        assert time.monotonic() - start < 1.0, "the failures outlived the window"
        while not _login(server, "alice", server_password="s3cret"):
            assert time.monotonic() - start < 4.0, "still refused after the window"
        assert time.monotonic() - start >= 1.0


# -- abuse limits (10) ------------------------------------------------------------


def test_connections_per_address_are_limited() -> None:
    with running(max_per_address=3) as server:
        wires = [login(server, f"user{n}") for n in range(3)]
        extra = Wire(server.address)
        # Refused as soon as it is accepted: nothing was sent on it.
        refusal = extra.recv()
        assert refusal is not None
        assert "ref" not in refusal
        _fatal(extra, refusal, "too_many_connections")
        for wire in wires:
            assert _alive(wire) == []
        _leave(wires.pop())
        again = login(server, "user9")
        assert _alive(again) == []
        again.close()
        for wire in wires:
            wire.close()


def test_rooms_per_client_are_limited() -> None:
    with running(max_rooms=2) as server:
        alice = login(server, "alice", "one", "two")
        _error(alice.request(type="join", room="three"), "too_many_rooms")
        assert alice.request(type="join", room="one")["type"] == "joined"
        assert alice.request(type="join", room="two")["type"] == "joined"
        _error(alice.request(type="members", room="three"), "no_such_room")
        assert alice.request(type="part", room="two")["type"] == "ok"
        assert alice.request(type="join", room="three")["type"] == "joined"
        alice.close()


@pytest.mark.parametrize("limit", [1, 2])
def test_members_per_room_are_limited(limit: int) -> None:
    with running(max_members=limit) as server:
        members = [login(server, f"m{n}", "lobby") for n in range(limit)]
        late = login(server, "late")
        _error(late.request(type="join", room="lobby"), "room_full")
        # Rejoining is not joining anew.
        assert members[0].request(type="join", room="lobby")["type"] == "joined"
        for member in members:  # nobody saw the refused member join
            frames = _alive(member)
            assert not [f for f in frames if f["type"] == "member_joined" and f["nick"] == "late"]
        expected = [f"m{n}" for n in range(limit)]
        assert late.request(type="members", room="lobby")["members"] == expected
        assert members[-1].request(type="part", room="lobby")["type"] == "ok"
        assert late.request(type="join", room="lobby")["type"] == "joined"
        for wire in (*members, late):
            wire.close()


# -- field rules (3) ----------------------------------------------------------------

BAD_TOPICS = [
    "evil \u202eusers\u202c here",  # right-to-left override
    "zero\u200bwidth",
    "bom\ufeff",
    "isolate \u2066x\u2069",
    "soft\u00adhyphen",
    "bell\x07",
    "\x1b[31mred",
    "line\u2028separator",
    "para\u2029separator",
    "private \ue000 use",
    "family \U0001f468\u200d\U0001f469",
]


def test_invisible_and_direction_changing_topics_are_refused() -> None:
    with running() as server:
        alice = login(server, "alice", "lobby")
        assert alice.request(type="topic", room="lobby", topic="Original")["type"] == "topic"
        for topic in BAD_TOPICS:
            _error(alice.request(type="topic", room="lobby", topic=topic), "invalid_fields")
        assert alice.request(type="join", room="lobby")["topic"] == "Original"
        # Accented letters, a dash, CJK and an emoji are ordinary text.
        good = (
            "Caf\u00e9 d\u00e9j\u00e0 vu, \u00c5ngstr\u00f6m \u2014 "
            + "\u4f60\u597d\u4e16\u754c \U0001f389"
        )
        reply = alice.request(type="topic", room="lobby", topic=good)
        assert reply["type"] == "topic", reply
        assert reply["topic"] == good
        assert alice.request(type="join", room="lobby")["topic"] == good
        alice.close()


def test_look_alike_nicks_and_bad_room_names_are_refused() -> None:
    with running() as server:
        for nick in ("\u0430lice", "al\u0456ce", "\uff41lice", "alice\u200b"):
            wire, reply = _hello(server, nick)
            _fatal(wire, reply, "invalid_fields")
        alice = login(server, "alice")
        _error(alice.request(type="nick", nick="\u0430lice"), "invalid_fields")
        for room in ("Lobby", "LOBBY", "my room", "lobby ", " lobby"):
            _error(alice.request(type="join", room=room), "invalid_fields")
        assert alice.request(type="join", room="lobby")["members"] == ["alice"]
        alice.close()


# -- forgery (6.3, 6.4, 14) -----------------------------------------------------------


def test_say_cannot_forge_sender_id_or_timestamp() -> None:
    with running() as server:
        alice = login(server, "alice", "lobby")
        bob = login(server, "bob", "lobby")
        alice.until(lambda f: f["type"] == "member_joined")
        before = time.time_ns() // 1_000_000
        alice.send(
            type="say",
            id=424242,
            room="lobby",
            text="trust me",
            nick="bob",
            ts=1,
            **{"from": "bob"},
        )
        echo = alice.until(lambda f: f.get("ref") == 424242)
        after = time.time_ns() // 1_000_000
        assert echo["type"] == "message"
        assert echo["nick"] == "alice"
        assert echo["id"] != 424242
        assert before <= echo["ts"] <= after
        assert "from" not in echo
        seen = bob.until(lambda f: f["type"] == "message")
        assert seen == {k: v for k, v in echo.items() if k != "ref"}
        stored = bob.request(type="history", room="lobby")["messages"]
        assert stored == [seen]
        alice.close()
        bob.close()


def test_dm_cannot_forge_sender_and_needs_a_connected_recipient() -> None:
    with running() as server:
        alice = login(server, "alice")
        bob = login(server, "bob")
        reply = alice.request(type="dm", to="BOB", text="psst", nick="carol")
        assert reply["type"] == "dm"
        assert (reply["nick"], reply["to"]) == ("alice", "bob")
        got = bob.until(lambda f: f["type"] == "dm")
        assert (got["nick"], got["to"], got["text"]) == ("alice", "bob", "psst")
        _error(alice.request(type="dm", to="ghost", text="hello?"), "no_such_nick")
        _leave(bob)
        _error(alice.request(type="dm", to="bob", text="still there?"), "no_such_nick")
        alice.close()


def test_commands_on_rooms_not_joined_reach_nobody() -> None:
    with running() as server:
        bob = login(server, "bob", "secret")
        assert bob.request(type="topic", room="secret", topic="Private")["type"] == "topic"
        alice = login(server, "alice", "lobby")
        _error(alice.request(type="say", room="secret", text="let me in"), "not_in_room")
        _error(alice.request(type="say", room="nowhere", text="anyone?"), "not_in_room")
        _error(alice.request(type="topic", room="secret", topic="Hijacked"), "not_in_room")
        _error(alice.request(type="part", room="secret"), "not_in_room")
        # Anything the server had sent bob would have come before this pong.
        assert _alive(bob) == []
        assert bob.request(type="history", room="secret")["messages"] == []
        assert bob.request(type="join", room="secret")["topic"] == "Private"
        assert alice.request(type="members", room="secret")["members"] == ["bob"]
        alice.close()
        bob.close()


# -- no leaks (8, 14) ----------------------------------------------------------------

_PATH = re.compile(r"(?:^|[\s'\"(=:])(?:/|[A-Za-z]:\\)\w")


def _clean(message: str, *secrets: str) -> None:
    assert "Traceback" not in message, message
    assert 'File "' not in message, message
    assert ".py" not in message, message
    assert not _PATH.search(message), message
    assert str(Path.cwd()) not in message, message
    for secret in secrets:
        assert secret not in message, message


def test_errors_and_replies_reveal_no_addresses_ids_or_internals() -> None:
    with running(max_rooms=3, max_members=2, auth_failures=LENIENT) as server:
        _register(server, "dave")
        bob, welcome = _hello(server, "bob")
        bob_session = welcome["session"]
        bob_peer = "{}:{}".format(*bob.sock.getsockname()[:2])
        assert bob.request(type="join", room="secret")["type"] == "joined"
        assert bob.request(type="join", room="lobby")["type"] == "joined"
        alice = login(server, "alice", "lobby", "a", "b")
        frames: list[dict[str, Any]] = []

        def ask(**frame: Any) -> dict[str, Any]:
            reply = alice.request(**frame)
            frames.append(reply)
            return reply

        def raw(data: bytes) -> dict[str, Any]:
            alice.raw(data)
            reply = alice.until(lambda f: f["type"] == "error")
            frames.append(reply)
            return reply

        errors: list[tuple[Callable[[], dict[str, Any]], str]] = [
            (lambda: raw(b"\xff\xfe\n"), "invalid_utf8"),
            (lambda: raw(b"not json\n"), "invalid_json"),
            (lambda: raw(b"[1, 2]\n"), "not_an_object"),
            (lambda: ask(type="frobnicate"), "unknown_type"),
            (lambda: ask(type="join", room="Bad Room"), "invalid_fields"),
            (lambda: ask(type="hello", nick="again"), "out_of_order"),
            (lambda: ask(type="say", room="secret", text="hi"), "not_in_room"),
            (lambda: ask(type="members", room="nowhere"), "no_such_room"),
            (lambda: ask(type="dm", to="ghost", text="hi"), "no_such_nick"),
            (lambda: ask(type="nick", nick="BOB"), "nick_in_use"),
            (lambda: ask(type="nick", nick="dave", password=OTHER), "auth_failed"),
            (lambda: ask(type="join", room="c"), "too_many_rooms"),
        ]
        for send, code in errors:
            reply = send()
            _error(reply, code)
            _clean(reply["message"], "127.0.0.1", bob_session, bob_peer)
        alice.request(type="part", room="b")
        carol = login(server, "carol", "b")
        _error(carol.request(type="join", room="lobby"), "room_full")
        assert carol.request(type="register", password=PASSWORD)["type"] == "ok"
        reply = carol.request(type="register", password=PASSWORD)
        _error(reply, "already_registered")
        _clean(reply["message"], "127.0.0.1", bob_session, bob_peer)

        assert ask(type="members", room="lobby")["members"] == ["alice", "bob"]
        assert ask(type="members", room="secret")["members"] == ["bob"]
        ask(type="rooms")
        ask(type="say", room="lobby", text="hello bob")
        frames.extend(_alive(alice))
        for frame in frames:
            for text in _strings(frame):
                assert "127.0.0.1" not in text, frame
                assert text != bob_session, frame
                assert bob_peer not in text, frame
        for wire in (alice, bob, carol):
            wire.close()


class _BrokenStore(MemoryStore):
    """A store whose history fails with a message full of internals."""

    def history(
        self, room: str, *, before: int | None, after: int | None, limit: int
    ) -> tuple[list[RoomMessage], bool]:
        raise OSError("disk I/O error at /var/lib/chat/chat.db (fd 7, 127.0.0.1:7878)")


def test_an_internal_failure_reveals_nothing() -> None:
    with running(_BrokenStore()) as server:
        alice = login(server, "alice", "lobby")
        reply = alice.request(type="history", room="lobby")
        _error(reply, "internal_error")
        _clean(reply["message"], "127.0.0.1", "disk", "OSError", "chat.db")
        assert _alive(alice) == []  # not fatal
        alice.close()
