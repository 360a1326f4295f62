"""Since 1.3: `welcome.epoch`, the generation of the server's stored state.

Restarts (which change it or keep it) need the server's process: see
tests/test_server_epoch.py. Here: what any running server must show.
"""

from __future__ import annotations

from tests.conformance.wire import Clients, unique_nick, unique_room


def _epoch(clients: Clients) -> str:
    welcome = clients.connect().request({"type": "hello", "nick": unique_nick(), "version": "1.3"})
    epoch = welcome.get("epoch")
    assert isinstance(epoch, str) and 1 <= len(epoch) <= 64, welcome
    assert all(0x21 <= ord(c) <= 0x7E for c in epoch), "printable ASCII"
    return epoch


def test_welcome_names_the_epoch_and_it_is_the_same_for_everyone(clients: Clients) -> None:
    assert _epoch(clients) == _epoch(clients)


def test_ids_increase_within_an_epoch(clients: Clients) -> None:
    room = unique_room()
    first = _epoch(clients)
    a = clients.login(room)
    b = clients.login(room)
    ids = [a.say(room, "one")["id"], b.say(room, "two")["id"], a.say(room, "three")["id"]]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert all(0 < i < 2**53 for i in ids)
    assert _epoch(clients) == first
