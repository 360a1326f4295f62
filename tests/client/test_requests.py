"""Every request method against a real server: the typed, correlated reply."""

from __future__ import annotations

from chatclient import Client
from chatproto import (
    PROTOCOL_VERSION,
    DirectMessage,
    HistoryPage,
    Joined,
    MemberJoined,
    MemberLeft,
    MemberList,
    Ok,
    PongReply,
    Renamed,
    RoomList,
    RoomMessage,
    TopicChanged,
)
from tests.client.conftest import ClientFactory, next_of


def test_connect_returns_welcome(make_client: ClientFactory) -> None:
    client = make_client("alice", connect=False)
    welcome = client.connect()
    assert welcome.nick == "alice" and welcome.version == PROTOCOL_VERSION
    assert client.welcome == welcome and client.connected and client.nickname == "alice"


def test_join_part_and_membership(make_client: ClientFactory) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    joined = alice.join("lobby")
    assert isinstance(joined, Joined)
    assert (joined.room, joined.members, joined.history) == ("lobby", ["alice"], [])
    assert alice.joined_rooms == {"lobby"}
    assert bob.join("lobby").members == ["alice", "bob"]
    assert next_of(alice, MemberJoined).nick == "bob"
    assert isinstance(bob.part("lobby"), Ok)
    assert bob.joined_rooms == frozenset()
    left = next_of(alice, MemberLeft)
    assert (left.nick, left.reason) == ("bob", "part")


def test_say_returns_the_stored_echo(make_client: ClientFactory) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    alice.join("lobby")
    bob.join("lobby")
    echo = alice.say("lobby", "hello\twith a tab\nand a second line")
    assert isinstance(echo, RoomMessage) and echo.ref is not None
    assert (echo.nick, echo.room, echo.text) == (
        "alice",
        "lobby",
        "hello\twith a tab\nand a second line",
    )
    seen = next_of(bob, RoomMessage)
    assert (seen.id, seen.ref, seen.text) == (echo.id, None, echo.text)
    assert bob.join("lobby").history[-1].id == echo.id  # joining again: a fresh `joined`


def test_dm(make_client: ClientFactory) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    sent = alice.dm("bob", "psst")
    assert isinstance(sent, DirectMessage)
    assert (sent.nick, sent.to, sent.text) == ("alice", "bob", "psst")
    got = next_of(bob, DirectMessage)
    assert (got.id, got.ref) == (sent.id, None)


def test_nick_is_used_on_the_wire_and_remembered(make_client: ClientFactory) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    alice.join("lobby")
    bob.join("lobby")
    renamed = alice.nick("alice_away")
    assert isinstance(renamed, Renamed) and (renamed.old, renamed.new) == ("alice", "alice_away")
    assert alice.nickname == "alice_away"
    assert next_of(bob, Renamed).new == "alice_away"
    assert alice.say("lobby", "still me").nick == "alice_away"


def test_rooms_members_topic_history_ping(make_client: ClientFactory) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    alice.join("lobby")
    bob.join("lobby")
    alice.join("dev")
    rooms = alice.rooms()
    assert isinstance(rooms, RoomList)
    assert [(r.room, r.members) for r in rooms.rooms] == [("dev", 1), ("lobby", 2)]
    members = bob.members("dev")  # no membership needed
    assert isinstance(members, MemberList) and members.members == ["alice"]
    topic = alice.topic("lobby", "Release day")
    assert isinstance(topic, TopicChanged) and (topic.topic, topic.nick) == ("Release day", "alice")
    assert next_of(bob, TopicChanged).topic == "Release day"
    ids = [alice.say("lobby", f"m{i}").id for i in range(5)]
    page = bob.history("lobby", limit=2)
    assert isinstance(page, HistoryPage)
    assert ([m.id for m in page.messages], page.more) == (ids[-2:], True)
    page = bob.history("lobby", after=ids[1], limit=10)
    assert ([m.id for m in page.messages], page.more) == (ids[2:], False)
    page = bob.history("lobby", before=ids[1])
    assert [m.id for m in page.messages] == ids[:1]
    pong = alice.ping("t1")
    assert isinstance(pong, PongReply) and pong.token == "t1"


def test_request_ids_are_unique_and_increasing(make_client: ClientFactory) -> None:
    alice: Client = make_client("alice")
    alice.join("lobby")
    refs = [alice.say("lobby", str(i)).ref for i in range(3)] + [alice.ping().ref]
    numbers = [r for r in refs if isinstance(r, int)]
    assert numbers == refs
    assert numbers == sorted(set(numbers))
