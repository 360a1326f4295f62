"""`Resumer` alone: what carries over from one connection to the next, against a fake exchange."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatclient.errors import ChatError
from chatclient.resume import Resumer
from chatproto import (
    Command,
    ErrorCode,
    Event,
    Hello,
    History,
    HistoryPage,
    Join,
    Joined,
    Nick,
    Ok,
    Part,
    Register,
    Renamed,
    Welcome,
)
from tests.client.fakes import LIMITS, message


def welcome(nick: str = "alice", *, epoch: str | None = None, resume: str | None = None) -> Welcome:
    return Welcome(
        session="s",
        nick=nick,
        server="fake",
        version="1.3",
        limits=LIMITS,
        epoch=epoch,
        resume=resume,
    )


def joined(room: str, *ids: int) -> Joined:
    return Joined(room=room, topic="", members=[], history=[message(i, room) for i in ids])


class Server:
    """A fake exchange: rooms holding message ids, some refusing to be joined."""

    def __init__(self, rooms: dict[str, list[int]], *, replay: int = 2, page: int = 3) -> None:
        self.rooms = rooms
        self.refuse: dict[str, ChatError] = {}
        self.replay, self.page = replay, page
        self.asked: list[Command] = []

    def __call__(self, command: Command) -> Event:
        self.asked.append(command)
        if isinstance(command, Join):
            if command.room in self.refuse:
                raise self.refuse[command.room]
            ids = self.rooms[command.room]
            return joined(command.room, *ids[len(ids) - self.replay :])
        assert isinstance(command, History)
        ids = self.rooms[command.room]
        if command.after is not None:
            newer = [i for i in ids if i > command.after]
            chosen, more = newer[: self.page], len(newer) > self.page
        else:
            older = [i for i in ids if command.before is None or i < command.before]
            chosen, more = older[-self.page :], len(older) > self.page
        return HistoryPage(
            room=command.room, messages=[message(i, command.room) for i in chosen], more=more
        )


def in_rooms(resumer: Resumer, **rooms: list[int]) -> None:
    for room, ids in rooms.items():
        resumer.learn(Join(room=room), joined(room, *ids))


def test_each_room_is_rejoined_on_its_own() -> None:
    resumer = Resumer(Hello(nick="alice"))
    in_rooms(resumer, a=[1], b=[2], c=[3])
    server = Server({"a": [1, 4], "b": [2], "c": [3, 5]})
    server.refuse["b"] = ChatError(ErrorCode.ROOM_FULL, "room is full")
    rejoin = resumer.rejoin(server)
    assert [j.room for j in rejoin.joined] == ["a", "c"]
    assert [(room, e.code) for room, e in rejoin.refused] == [("b", "room_full")]
    assert [(m.room, m.id) for m in rejoin.recovered] == [("a", 4), ("c", 5)]
    assert resumer.rooms == {"a", "c"}
    # The next reconnection does not ask for b again.
    server.asked.clear()
    resumer.rejoin(server)
    assert [c.room for c in server.asked if isinstance(c, Join)] == ["a", "c"]


def test_a_fatal_error_ends_the_rejoin() -> None:
    resumer = Resumer(Hello(nick="alice"))
    in_rooms(resumer, a=[1], b=[2])
    server = Server({"a": [1], "b": [2]})
    server.refuse["a"] = ChatError(ErrorCode.SHUTDOWN, "bye", fatal=True)
    with pytest.raises(ChatError):
        resumer.rejoin(server)
    assert resumer.rooms == {"a", "b"}  # kept for the next attempt


def test_hello_carries_the_last_resume_token() -> None:
    resumer = Resumer(Hello(nick="alice", password="secret-pass"))
    assert resumer.hello().resume is None
    resumer.welcomed(welcome(resume="token-1"))
    hello = resumer.hello()
    assert (hello.resume, hello.nick, hello.password) == ("token-1", "alice", "secret-pass")
    resumer.welcomed(welcome(resume="token-2"))
    assert resumer.hello().resume == "token-2"
    resumer.welcomed(welcome())  # a 1.2 server: no token to offer
    assert resumer.hello().resume is None


def test_a_new_epoch_forgets_every_id() -> None:
    resumer = Resumer(Hello(nick="alice"))
    assert not resumer.welcomed(welcome(epoch="e1"))
    in_rooms(resumer, lobby=[100])
    assert not resumer.fresh(message(50))
    assert not resumer.welcomed(welcome(epoch="e1"))
    assert not resumer.fresh(message(99))  # same state: ids kept
    assert resumer.welcomed(welcome(epoch="e2"))
    rejoin = resumer.rejoin(Server({"lobby": [1, 2]}))
    assert rejoin.epoch_changed
    assert [m.id for m in rejoin.recovered] == [1, 2]  # what the new state replays
    assert all(resumer.fresh(m) for m in rejoin.recovered)
    assert resumer.fresh(message(3))
    assert not resumer.fresh(message(3))


def test_no_epoch_from_the_server_changes_nothing() -> None:
    resumer = Resumer(Hello(nick="alice"))
    resumer.welcomed(welcome(epoch="e1"))
    in_rooms(resumer, lobby=[100])
    assert not resumer.welcomed(welcome())
    assert not resumer.fresh(message(100))


def test_learn_follows_nick_password_and_rooms() -> None:
    resumer = Resumer(Hello(nick="alice"))
    in_rooms(resumer, lobby=[], dev=[])
    resumer.learn(Part(room="dev"), Ok())
    assert resumer.rooms == {"lobby"}
    resumer.learn(Register(password="long-enough"), Ok())
    assert resumer.hello().password == "long-enough"
    resumer.learn(Nick(nick="ALICE"), Renamed(old="alice", new="ALICE"))
    assert (resumer.nick, resumer.hello().password) == ("ALICE", "long-enough")
    resumer.learn(Nick(nick="bob", password="bobs-password"), Renamed(old="ALICE", new="bob"))
    assert (resumer.nick, resumer.hello().password) == ("bob", "bobs-password")


@given(
    stored=st.lists(st.integers(1, 400), unique=True, max_size=60).map(sorted),
    seen_at=st.integers(0, 60),
    replay=st.integers(0, 10),
    page=st.integers(1, 10),
)
def test_rejoin_recovers_exactly_what_was_missed(
    stored: list[int], seen_at: int, replay: int, page: int
) -> None:
    seen = stored[:seen_at]
    resumer = Resumer(Hello(nick="alice"))
    in_rooms(resumer, lobby=seen[-1:])
    rejoin = resumer.rejoin(Server({"lobby": stored}, replay=replay, page=page))
    last = seen[-1] if seen else 0
    assert [m.id for m in rejoin.recovered] == [i for i in stored if i > last]
