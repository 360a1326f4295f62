"""Since 1.3: idempotency keys on `say` and `dm`.

A `say` or `dm` whose key the sender's nick used lately is not applied again:
its sender gets the original echo (same id, ts and text, the new ref) and
nobody else gets anything.
"""

from __future__ import annotations

from tests.conformance.wire import Clients, Frame, unique_nick, unique_room


def _same(retry: Frame, original: Frame) -> None:
    assert retry["type"] == original["type"]
    assert {k: v for k, v in retry.items() if k != "ref"} == {
        k: v for k, v in original.items() if k != "ref"
    }, "the retry is answered with the original echo"


def test_a_retried_say_is_answered_with_the_original(clients: Clients) -> None:
    room = unique_room()
    sender = clients.login(room)
    reader = clients.login(room)
    first = sender.request({"type": "say", "room": room, "text": "once", "key": "k-1"})
    retry = sender.request({"type": "say", "room": room, "text": "once", "key": "k-1"})
    _same(retry, first)
    assert retry["ref"] != first["ref"]
    got = reader.barrier()
    assert [f["text"] for f in got if f["type"] == "message"] == ["once"], got
    page = reader.request({"type": "history", "room": room})
    assert [m["id"] for m in page["messages"]] == [first["id"]], "stored once"


def test_a_reused_key_gets_the_original_message_whatever_the_text(clients: Clients) -> None:
    room = unique_room()
    sender = clients.login(room)
    first = sender.request({"type": "say", "room": room, "text": "first", "key": "same"})
    again = sender.request({"type": "say", "room": room, "text": "second", "key": "same"})
    _same(again, first)
    assert again["text"] == "first"


def test_pipelined_duplicates_are_stored_once(clients: Clients) -> None:
    room = unique_room()
    sender = clients.login(room)
    reader = clients.login(room)
    frames = [
        {"type": "say", "id": f"p{n}", "room": room, "text": "burst", "key": "dup"}
        for n in range(3)
    ]
    sender.send(*frames)
    echoes = [sender.reply(f"p{n}") for n in range(3)]
    for echo in echoes[1:]:
        _same(echo, echoes[0])
    got = [f for f in reader.barrier() if f["type"] == "message"]
    assert len(got) == 1, got


def test_a_retry_after_reconnecting_is_deduplicated(clients: Clients) -> None:
    room = unique_room()
    reader = clients.login(room)
    nick = unique_nick()
    first_conn = clients.login(room, nick=nick)
    first = first_conn.request({"type": "say", "room": room, "text": "sent", "key": "reconnect"})
    first_conn.request({"type": "bye"}, expect="ok")
    first_conn.closed_quietly()
    second_conn = clients.login(room, nick=nick.upper())  # the scope is the folded nick
    retry = second_conn.request({"type": "say", "room": room, "text": "sent", "key": "reconnect"})
    _same(retry, first)
    messages = [f for f in reader.barrier() if f["type"] == "message"]
    assert [m["id"] for m in messages] == [first["id"]]


def test_keys_are_scoped_by_nick(clients: Clients) -> None:
    room = unique_room()
    a = clients.login(room)
    b = clients.login(room)
    one = a.request({"type": "say", "room": room, "text": "a's", "key": "shared"})
    two = b.request({"type": "say", "room": room, "text": "b's", "key": "shared"})
    assert two["id"] != one["id"] and two["nick"] == b.nick and two["text"] == "b's"


def test_a_retried_dm_is_answered_with_the_original(clients: Clients) -> None:
    sender = clients.login()
    target = clients.login()
    first = sender.request({"type": "dm", "to": target.nick, "text": "psst", "key": "d1"})
    retry = sender.request({"type": "dm", "to": target.nick, "text": "psst", "key": "d1"})
    _same(retry, first)
    got = [f for f in target.barrier() if f["type"] == "dm"]
    assert len(got) == 1 and got[0]["id"] == first["id"], got


def test_a_keyless_say_is_never_deduplicated(clients: Clients) -> None:
    room = unique_room()
    sender = clients.login(room)
    one = sender.say(room, "same text")
    two = sender.say(room, "same text")
    assert two["id"] > one["id"]
