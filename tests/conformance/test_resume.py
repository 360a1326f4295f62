"""Since 1.3: session resume (`hello.resume`, `welcome.resume`, `welcome.resumed`).

The old connection in these tests is never closed by the client: it is the
ghost a client leaves behind when its network goes away unnoticed.
"""

from __future__ import annotations

from typing import Any

from tests.conformance.wire import Clients, Frame, Wire, unique_nick, unique_room


def _hello13(wire: Wire, nick: str, **extra: Any) -> Frame:
    return wire.hello(nick, version="1.3", **extra)


def _token(welcome: Frame) -> str:
    token = welcome.get("resume")
    assert isinstance(token, str) and 1 <= len(token) <= 128, welcome
    assert all(0x21 <= ord(c) <= 0x7E for c in token), "printable ASCII"
    return token


def test_every_welcome_carries_a_fresh_token(clients: Clients) -> None:
    first = _hello13(clients.connect(), unique_nick())
    second = _hello13(clients.connect(), unique_nick())
    assert first["resumed"] is False and second["resumed"] is False
    assert _token(first) != _token(second)


def test_resume_takes_over_the_ghost_silently(clients: Clients) -> None:
    room = unique_room()
    observer = clients.login(room)
    old = clients.connect()
    nick = unique_nick("r")
    welcome = _hello13(old, nick)
    old.join(room)
    assert observer.next("member_joined")["nick"] == nick
    observer.barrier()

    new = clients.connect()
    again = _hello13(new, nick, resume=_token(welcome))
    assert again["resumed"] is True
    assert again["nick"] == nick
    assert _token(again) != _token(welcome), "each welcome issues a new token"
    old.fatal("replaced")
    # The new connection is in the room without joining, and nobody was told.
    echo = new.say(room, "I am back")
    got = observer.next("the message of the resumed session")
    assert got == {k: v for k, v in echo.items() if k != "ref"}, "no member_left/member_joined"
    assert observer.barrier() == []
    members = observer.request({"type": "members", "room": room})["members"]
    assert nick in members


def test_resume_matches_the_nick_case_insensitively(clients: Clients) -> None:
    nick = unique_nick("Case")
    welcome = _hello13(clients.connect(), nick)
    again = _hello13(clients.connect(), nick.upper(), resume=_token(welcome))
    assert again["resumed"] is True
    assert again["nick"].lower() == nick.lower()


def test_a_token_works_once(clients: Clients) -> None:
    nick = unique_nick()
    token = _token(_hello13(clients.connect(), nick))
    second = clients.connect()
    assert _hello13(second, nick, resume=token)["resumed"] is True
    third = clients.connect()
    # Ignored: a normal hello, for a nick that is in use.
    error = third.request(
        {"type": "hello", "nick": nick, "version": "1.3", "resume": token}, expect="error"
    )
    assert (error["code"], error["fatal"]) == ("nick_in_use", True)
    assert second.barrier() == [], "the session that resumed goes on"


def test_a_token_of_another_nick_is_ignored(clients: Clients) -> None:
    owner = clients.connect()
    token = _token(_hello13(owner, unique_nick()))
    other = unique_nick()
    welcome = _hello13(clients.connect(), other, resume=token)
    assert welcome["resumed"] is False and welcome["nick"] == other
    assert owner.barrier() == [], "the token's session is untouched"


def test_an_unknown_token_is_ignored(clients: Clients) -> None:
    nick = unique_nick()
    welcome = _hello13(clients.connect(), nick, resume="no-such-token")
    assert welcome["resumed"] is False and welcome["nick"] == nick


def test_a_token_is_useless_after_bye(clients: Clients) -> None:
    room = unique_room()
    nick = unique_nick()
    wire = clients.connect()
    token = _token(_hello13(wire, nick))
    wire.join(room)
    wire.request({"type": "bye"}, expect="ok")
    wire.closed_quietly()
    later = clients.connect()
    welcome = _hello13(later, nick, resume=token)
    assert welcome["resumed"] is False, "a session that ended cleanly cannot be resumed"
    later.refused({"type": "say", "room": room, "text": "still in?"}, "not_in_room")


def test_a_registered_nick_still_needs_its_password(clients: Clients) -> None:
    nick = unique_nick()
    old = clients.connect()
    token = _token(_hello13(old, nick))
    old.request({"type": "register", "password": "correct horse"}, expect="ok")
    thief = clients.connect()
    error = thief.request(
        {"type": "hello", "nick": nick, "version": "1.3", "resume": token}, expect="error"
    )
    assert (error["code"], error["fatal"]) == ("auth_failed", True)
    assert old.barrier() == [], "the session was not taken over"
    owner = clients.connect()
    welcome = _hello13(owner, nick, resume=token, password="correct horse")
    assert welcome["resumed"] is True
    old.fatal("replaced")


def test_what_was_missed_is_fetched_with_history_after(clients: Clients) -> None:
    room = unique_room()
    talker = clients.login(room)
    nick = unique_nick()
    old = clients.connect()
    token = _token(_hello13(old, nick))
    old.join(room)
    last_seen = talker.say(room, "seen")["id"]
    old.wait_type("message", text="seen")
    # The old connection stops reading: what follows it never sees.
    missed = [talker.say(room, f"missed {n}")["id"] for n in range(3)]
    new = clients.connect()
    assert _hello13(new, nick, resume=token)["resumed"] is True
    page = new.request({"type": "history", "room": room, "after": last_seen})
    assert [m["id"] for m in page["messages"]] == missed
    assert page["more"] is False
